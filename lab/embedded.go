package lab

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rollsafe/rollsafe/lab/albcontroller"
	"github.com/rollsafe/rollsafe/lab/cluster"
	"github.com/rollsafe/rollsafe/lab/kubelet"
	"github.com/rollsafe/rollsafe/observe/kube"
	"github.com/rollsafe/rollsafe/timeline"
)

// embedded runs the scenario on the in-process cluster stand-in.
type embedded struct {
	cl   *cluster.Cluster
	d    *cluster.Deployment
	ctrl *albcontroller.Controller
}

func startEmbedded(ctx context.Context, r *run) (platform, error) {
	e := &embedded{}
	onPod := e.reconcileFor(ctx, r)
	var view *podView
	if r.evidenceOn {
		view = &podView{r: r, last: map[string]podSnapshot{}}
	}
	var err error
	e.cl, err = cluster.New(ctx, cluster.Options{
		Port: AppPort, Command: r.o.App, Scale: r.scale, Scenario: r.s.Name,
		Sink:   r.onPodRecord,
		OnPod:  func(ev cluster.PodEvent) { view.observe(ev); onPod(ev.Pod) },
		Stdout: r.o.PodOutput, Stderr: r.o.PodOutput,
	})
	if err != nil {
		return nil, err
	}
	if e.d, err = e.cl.CreateDeployment(deployment(r.s, r.scale)); err != nil {
		e.close()
		return nil, err
	}
	if err := e.d.WaitComplete(ctx); err != nil {
		e.close()
		return nil, fmt.Errorf("first revision never became available: %w", err)
	}
	return e, nil
}

// reconcileFor is what reacts to every pod change: on ip topologies the
// controller stand-in (registration, readiness gates); on instance
// topologies the EndpointSlice controller feeding every node's kube-proxy
// (the targets are the nodes, registered once).
func (e *embedded) reconcileFor(ctx context.Context, r *run) func(*corev1.Pod) {
	if r.nodes != nil {
		return func(*corev1.Pod) { r.nodes.update(e.cl.Pods) }
	}
	if r.hop != nil {
		return func(*corev1.Pod) { r.hop.update(e.cl.Pods) }
	}
	opts := r.controllerOptions()
	opts.Get = func(name string) (*corev1.Pod, bool) {
		p, ok := e.cl.Pod(name)
		if !ok {
			return nil, false
		}
		return p.Status(), true
	}
	opts.SetGate = func(p *corev1.Pod, t corev1.PodConditionType) error {
		return e.cl.SetCondition(p.Name, t, corev1.ConditionTrue)
	}
	e.ctrl = albcontroller.New(ctx, opts)
	return e.ctrl.Observe
}

func (e *embedded) rollout(ctx context.Context, t corev1.PodTemplateSpec) error {
	return e.d.Rollout(ctx, t)
}

func (e *embedded) terminating() bool {
	for _, p := range e.cl.Pods() {
		if p.DeletionTimestamp != nil {
			return true
		}
	}
	return false
}

func (e *embedded) close() {
	if e.cl != nil {
		e.cl.Close()
	}
	if e.ctrl != nil {
		e.ctrl.Wait()
	}
}

func (e *embedded) namespace() string { return namespace }

// podView is the Kubernetes API's view of the embedded cluster's pods, as
// observe/kube would record it from a watch (Source kube): the cluster
// stand-in hands over the pod object after every change, and a record is
// emitted only when the pod's state (kube.PodState) or attributes
// (kube.PodAttrs) changed, worded like the watcher's (Reason "added" or
// kube.Diff); a pod that is gone is recorded kube.StateDeleted.
type podView struct {
	r    *run
	mu   sync.Mutex
	last map[string]podSnapshot // by namespace/name: what was last recorded
}

type podSnapshot struct {
	state string
	attrs map[string]string
}

// observe records ev if it changed the pod's view; the API holds a change
// before the controller reacts to it, so it runs first. A nil view (Serve
// keeps no evidence) records nothing.
func (v *podView) observe(ev cluster.PodEvent) {
	if v == nil {
		return
	}
	p := ev.Pod
	state, attrs := kube.PodState(p), kube.PodAttrs(p)
	if ev.Change == kubelet.StateDeleted {
		state = kube.StateDeleted
	}
	key := p.Namespace + "/" + p.Name
	// Recording under the lock keeps the records in time order across pods,
	// as the watcher does.
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.r.observeCtx.Err() != nil {
		return // the scenario is over: its teardown is not evidence
	}
	prev, seen := v.last[key]
	if seen && prev.state == state && maps.Equal(prev.attrs, attrs) {
		return
	}
	reason := "added"
	if seen {
		reason = kube.Diff(prev.state, prev.attrs, state, attrs)
	}
	if state == kube.StateDeleted {
		delete(v.last, key)
	} else {
		v.last[key] = podSnapshot{state: state, attrs: attrs}
	}
	v.r.emit(&timeline.Record{Kind: timeline.KindPod, Time: time.Now(), Source: kube.Source,
		Object: p.Name, State: state, Reason: reason, Attrs: attrs})
}
