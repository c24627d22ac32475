package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/rollsafe/rollsafe/lab/cluster"
	"github.com/rollsafe/rollsafe/lab/kubelet"
	"github.com/rollsafe/rollsafe/timeline"
)

// DefaultNodeName is the Node an agent registers when Options.NodeName is empty.
const DefaultNodeName = "rollsafe-lab-node"

// stopTimeout bounds how long Stop keeps writing final pod statuses and
// removing the Node once every process is gone.
const stopTimeout = 10 * time.Second

// Options say which API server to serve and how to run the pods.
type Options struct {
	// Config reaches the API server; it needs to create and patch nodes,
	// leases and pods/status, list and watch pods, and delete pods.
	Config *rest.Config
	// NodeName is the Node to register (default DefaultNodeName).
	NodeName string
	// Port is where every pod listens, each on its own IP.
	Port int
	// Command, when set, replaces every container's command (the lab's --app).
	Command []string
	// Scale shrinks every pod duration (see kubelet.TimeScale).
	Scale kubelet.TimeScale
	// Sink gets the pods' timeline records and the agent's own warnings
	// (optional), from many goroutines at once: it must be safe for
	// concurrent use. After its first error the agent and its pods send it
	// nothing more, and Err returns it.
	Sink timeline.Sink
	// PodOutput receives every pod's stdout and stderr (nil discards them);
	// it must be safe for concurrent writes.
	PodOutput io.Writer
	// FirstIP is the first pod address handed out (default a random 127.b.1.1); the
	// allocator counts up the last two bytes. Give an embedded lab and an
	// agent in one process different ranges. The API server stores loopback
	// pod IPs but the EndpointSlice controller cannot publish them (their
	// validation refuses 127.0.0.0/8): for EndpointSlices, use a range made
	// local to this host, such as 198.18.0.0/16 (RFC 2544's benchmarking
	// range) added to lo.
	FirstIP netip.Addr
	// PodAddr, when set, is the address a pod's status carries for a pod
	// listening on ip (nil: ip itself). It lets pods listen on loopback and
	// still appear in EndpointSlices, whose validation refuses loopback: the
	// lab shows 198.18.x.y in the API and maps it back where it dials a pod.
	PodAddr func(ip netip.Addr) netip.Addr
}

// Agent is a running node.
type Agent struct {
	opts Options
	rec  *timeline.Latch // in front of opts.Sink, for the agent and every pod
	cs   kubernetes.Interface
	node *node
	ipam *cluster.IPAM
	logs *logServer // the kubelet endpoint for pods/log

	// podCtx is the pods' life: cancelling it kills every process at once.
	podCtx    context.Context
	killPods  context.CancelFunc
	apiCtx    context.Context // API calls; cancelled once Stop is done
	cancelAPI context.CancelFunc

	informerStop chan struct{}
	factory      informers.SharedInformerFactory

	mu      sync.Mutex
	closing bool
	pods    map[types.UID]*podRun
	workers sync.WaitGroup

	beatDone chan struct{}
	stopOnce sync.Once
	stopped  chan struct{}
}

// Start registers the node, starts watching the pods bound to it, and
// returns once the watch has caught up. When ctx ends the agent stops as
// with Stop.
func Start(ctx context.Context, opts Options) (*Agent, error) {
	if err := checkOptions(&opts); err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("nodeagent: %w", err)
	}
	a := &Agent{opts: opts, rec: timeline.NewLatch(opts.Sink), cs: cs, ipam: cluster.NewIPAM(opts.FirstIP, opts.Port),
		pods: map[types.UID]*podRun{}, informerStop: make(chan struct{}),
		beatDone: make(chan struct{}), stopped: make(chan struct{})}
	if a.logs, err = startLogServer(a); err != nil {
		return nil, fmt.Errorf("nodeagent: pod logs: %w", err)
	}
	if a.node, err = register(ctx, cs, opts.NodeName, a.logs.port()); err != nil {
		a.logs.close()
		return nil, fmt.Errorf("nodeagent: %w", err)
	}
	a.podCtx, a.killPods = context.WithCancel(context.Background())
	a.apiCtx, a.cancelAPI = context.WithCancel(context.Background())
	go a.beat()

	a.factory = informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", opts.NodeName).String()
		}))
	inf := a.factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.onPod(obj) },
		UpdateFunc: func(_, obj any) { a.onPod(obj) },
		DeleteFunc: a.onPodGone,
	}); err != nil {
		a.Stop()
		return nil, fmt.Errorf("nodeagent: %w", err)
	}
	a.factory.Start(a.informerStop)
	if !cache.WaitForCacheSync(either(ctx.Done(), a.informerStop), inf.HasSynced) {
		a.Stop()
		return nil, fmt.Errorf("nodeagent: node %s: pod watch did not sync: %w", opts.NodeName, context.Cause(ctx))
	}
	go func() {
		select {
		case <-ctx.Done():
			a.Stop()
		case <-a.stopped:
		}
	}()
	return a, nil
}

func checkOptions(o *Options) error {
	if o.Config == nil {
		return errors.New("nodeagent: no API server config")
	}
	if o.NodeName == "" {
		o.NodeName = DefaultNodeName
	}
	if msgs := validation.NameIsDNSSubdomain(o.NodeName, false); len(msgs) > 0 {
		return fmt.Errorf("nodeagent: bad node name %q: %s", o.NodeName, msgs[0])
	}
	if o.Port <= 0 || o.Port > 65535 {
		return fmt.Errorf("nodeagent: bad pod port %d (want 1-65535)", o.Port)
	}
	if o.FirstIP.IsValid() {
		if !o.FirstIP.Is4() {
			return fmt.Errorf("nodeagent: first pod IP %s is not IPv4", o.FirstIP)
		}
		if err := checkLocal(o.FirstIP); err != nil {
			return fmt.Errorf("nodeagent: %w", err)
		}
	}
	return nil
}

// checkLocal says whether pods can listen on ip. Every 127.0.0.0/8 address
// is local; another range is only when made so (ip addr add
// 198.18.0.1/16 dev lo), which is what EndpointSlices need: the API server
// refuses loopback endpoint addresses.
func checkLocal(ip netip.Addr) error {
	if ip.IsLoopback() {
		return nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return fmt.Errorf("pod IP %s is not an address of this host (use 127.0.x.y, or make the range local: ip addr add %s/16 dev lo): %w", ip, ip, err)
	}
	return ln.Close()
}

// NodeName is the registered Node's name.
func (a *Agent) NodeName() string { return a.opts.NodeName }

// Stop kills every pod's process group at once, waits until they are gone
// and their last status is written, then deletes the Node and its Lease.
// Pod objects stay, as they do when a kubelet dies; with the Node gone the
// pod garbage collector removes them. Safe to call more than once.
func (a *Agent) Stop() {
	a.stopOnce.Do(a.shutdown)
	<-a.stopped
}

func (a *Agent) shutdown() {
	defer close(a.stopped)
	a.mu.Lock()
	a.closing = true
	a.mu.Unlock()
	close(a.informerStop)
	if a.factory != nil {
		a.factory.Shutdown()
	}
	a.killPods()
	bound := time.AfterFunc(stopTimeout, a.cancelAPI) // final patches must not hold Stop up
	a.workers.Wait()
	<-a.beatDone
	bound.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := a.node.remove(ctx); err != nil {
		a.warn(a.opts.NodeName, err.Error())
	}
	a.cancelAPI()
	a.logs.close()
}

// beat keeps the node alive until the agent stops.
func (a *Agent) beat() {
	defer close(a.beatDone)
	t := time.NewTicker(renewInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := a.node.heartbeat(a.podCtx); err != nil && a.podCtx.Err() == nil {
				a.warn(a.opts.NodeName, "heartbeat: "+err.Error())
			}
		case <-a.podCtx.Done():
			return
		}
	}
}

// Err is the sink's first error: the records since are missing.
func (a *Agent) Err() error { return a.rec.Err() }

// warn records something the agent could not do.
func (a *Agent) warn(object, msg string) {
	a.rec.Write(&timeline.Record{Kind: timeline.KindEvent, Time: time.Now(), Source: kubelet.Source,
		Object: object, State: string(kubelet.StateWarning), Reason: "nodeagent: " + msg})
}

// onPod handles every add and update of a pod bound to the node. The
// informer calls it from one goroutine, so a pod's events are handled in
// order.
func (a *Agent) onPod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	a.mu.Lock()
	r, closing := a.pods[pod.UID], a.closing
	a.mu.Unlock()
	if closing {
		return
	}
	if r == nil {
		switch {
		case pod.DeletionTimestamp != nil:
			// Deleted before it ran here (or after an earlier agent died):
			// no process to stop, so finish the deletion.
			a.deleteObject(pod.Namespace, pod.Name, pod.UID)
			return
		case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
			return // finished; a kubelet does not run it again
		}
		r = a.run(pod)
	}
	r.sync(pod)
}

// onPodGone: the object is gone from the API (deleted with grace 0, or
// the watch missed the end). A process still running has nothing left to
// serve: terminate it.
func (a *Agent) onPodGone(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	a.mu.Lock()
	r := a.pods[pod.UID]
	a.mu.Unlock()
	if r != nil {
		r.gone(pod)
	}
}

// forget drops a finished pod and frees its address.
func (a *Agent) forget(r *podRun) {
	a.mu.Lock()
	delete(a.pods, r.uid)
	a.mu.Unlock()
	if r.logFile != nil {
		r.logFile.Close()
	}
	if r.ip.IsValid() {
		a.ipam.Release(r.ip)
	}
}

func either(a, b <-chan struct{}) <-chan struct{} {
	c := make(chan struct{})
	go func() {
		select {
		case <-a:
		case <-b:
		}
		close(c)
	}()
	return c
}
