package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/rollsafe/rollsafe/lab/kubelet"
	"github.com/rollsafe/rollsafe/timeline"
)

// Options configure the cluster stand-in.
type Options struct {
	// Port every pod listens on (its own IP, this port). Required.
	Port int
	// Command, when set, replaces every container's command and args.
	Command []string
	// Scale shrinks every duration (see kubelet.TimeScale).
	Scale kubelet.TimeScale
	// Sink gets every pod's timeline records (optional), from each pod's
	// own goroutine at once: it must be safe for concurrent use. After its
	// first error no pod sends it anything more, and Err returns it.
	Sink timeline.Sink
	// OnPod gets every pod change (optional): what the lab's controller
	// stand-in reacts to (kubelet.StateContainersReady, StateTerminating,
	// StateDeleted, ...). Calls for one pod come in order; calls for
	// different pods may interleave. It may call back into the cluster.
	OnPod func(PodEvent)
	// Stdout and Stderr get the pods' output (nil discards it).
	Stdout, Stderr io.Writer
	// Scenario is copied into every record.
	Scenario string
	// FirstIP is the first pod address handed out (default a random 127.b.1.1).
	FirstIP netip.Addr
}

// PodEvent is one change of one pod.
type PodEvent struct {
	Pod    *corev1.Pod // snapshot after the change; Status.PodIP is its address
	Change kubelet.State
}

// Cluster runs Deployments. Close (or the end of the context given to New)
// kills every pod.
type Cluster struct {
	opts   Options
	rec    *timeline.Latch // in front of opts.Sink, for every pod
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	ipam  *ipam
	pods  map[string]*kubelet.Pod // every pod not yet gone, by name
	early map[string]bool         // pods gone before startPod registered them
	deps  map[string]*Deployment
	wg    sync.WaitGroup
	close sync.Once
}

// New returns an empty cluster.
func New(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Port <= 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("cluster: bad pod port %d", opts.Port)
	}
	if opts.FirstIP.IsValid() && !(opts.FirstIP.Is4() && opts.FirstIP.IsLoopback()) {
		return nil, fmt.Errorf("cluster: first pod IP %s is not in 127.0.0.0/8", opts.FirstIP)
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &Cluster{opts: opts, rec: timeline.NewLatch(opts.Sink), ctx: ctx, cancel: cancel, ipam: newIPAM(opts.FirstIP, opts.Port),
		pods: map[string]*kubelet.Pod{}, early: map[string]bool{}, deps: map[string]*Deployment{}}
	return c, nil
}

// Close stops every controller and kills every pod at once (no grace),
// and returns when all are gone.
func (c *Cluster) Close() {
	c.close.Do(func() {
		c.cancel()
		c.wg.Wait() // controllers stopped: nothing creates pods any more
		c.mu.Lock()
		pods := make([]*kubelet.Pod, 0, len(c.pods))
		for _, p := range c.pods {
			pods = append(pods, p)
		}
		c.mu.Unlock()
		for _, p := range pods {
			p.Close()
		}
	})
}

// Err is the sink's first error: the pods' records since are missing.
func (c *Cluster) Err() error { return c.rec.Err() }

// SetCondition sets a pod condition (a readiness gate) on a pod by name.
func (c *Cluster) SetCondition(pod string, t corev1.PodConditionType, s corev1.ConditionStatus) error {
	p, ok := c.Pod(pod)
	if !ok {
		return fmt.Errorf("pod %s: %w", pod, kubelet.ErrGone)
	}
	return p.SetCondition(t, s)
}

// Pod returns a pod that is not gone yet.
func (c *Cluster) Pod(name string) (*kubelet.Pod, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pods[name]
	return p, ok
}

// Pods returns snapshots of every pod not yet gone.
func (c *Cluster) Pods() []*corev1.Pod {
	c.mu.Lock()
	ps := make([]*kubelet.Pod, 0, len(c.pods))
	for _, p := range c.pods {
		ps = append(ps, p)
	}
	c.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Status())
	}
	return out
}

// Deployment returns a deployment created earlier.
func (c *Cluster) Deployment(name string) (*Deployment, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.deps[name]
	return d, ok
}

// CreateDeployment validates d, starts its controller and creates its first
// pods; it returns at once (WaitComplete waits for them).
func (c *Cluster) CreateDeployment(d *appsv1.Deployment) (*Deployment, error) {
	if err := validateDeployment(d); err != nil {
		return nil, err
	}
	dep := newDeployment(c, d.DeepCopy())
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		return nil, errors.New("cluster: closed")
	}
	if _, dup := c.deps[d.Name]; dup {
		c.mu.Unlock()
		return nil, fmt.Errorf("deployment %s: already exists", d.Name)
	}
	c.deps[d.Name] = dep
	c.wg.Add(1)
	c.mu.Unlock()
	go func() { defer c.wg.Done(); dep.loop(c.ctx) }()
	dep.kick()
	return dep, nil
}

// startPod allocates an address and starts pod through the kubelet.
func (c *Cluster) startPod(pod *corev1.Pod, onStatus func(*corev1.Pod, kubelet.State)) (*kubelet.Pod, error) {
	c.mu.Lock()
	ip, err := c.ipam.allocate()
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	p, err := kubelet.Start(c.ctx, kubelet.Options{
		Pod: pod, IP: ip.String(), Port: c.opts.Port, Command: c.opts.Command,
		Scale: c.opts.Scale, Sink: c.rec.Write, Scenario: c.opts.Scenario,
		Stdout: c.opts.Stdout, Stderr: c.opts.Stderr,
		OnStatus: func(snap *corev1.Pod, change kubelet.State) {
			if change == kubelet.StateDeleted {
				c.forget(snap.Name, ip)
			}
			onStatus(snap, change)
			if c.opts.OnPod != nil {
				c.opts.OnPod(PodEvent{Pod: snap, Change: change})
			}
		},
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.ipam.release(ip)
		return nil, err
	}
	if c.early[pod.Name] {
		delete(c.early, pod.Name) // already gone (the cluster is closing)
	} else {
		c.pods[pod.Name] = p
	}
	return p, nil
}

// forget drops a gone pod and frees its address.
func (c *Cluster) forget(name string, ip netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pods[name]; !ok {
		c.early[name] = true
	}
	delete(c.pods, name)
	c.ipam.release(ip)
}

func (c *Cluster) nameTaken(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pods[name]
	return ok
}
