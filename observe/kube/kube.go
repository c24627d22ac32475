// Package kube records what a Kubernetes cluster did during a rollout: pod
// states (phase, conditions and readiness gates, deletion, containers, IP),
// EndpointSlice endpoint states (ready/serving/terminating), and Deployment
// and ReplicaSet rollout progress, as timeline.Records with Source "kube".
//
// It watches through client-go shared informers and emits a record only when
// something meaningful changed: an update that only moves resourceVersion,
// managedFields or an unrelated annotation is dropped. Each record carries
// the object's whole observed state in Attrs, so a reader can answer "what
// did the cluster look like at this instant" from the last record per object.
package kube

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/rollsafe/rollsafe/timeline"
)

// Source is the Record.Source of every record this package emits.
const Source = "kube"

// Resource names one kind of object the watcher follows.
type Resource string

const (
	Pods           Resource = "pods"
	EndpointSlices Resource = "endpointslices"
	Deployments    Resource = "deployments"
	ReplicaSets    Resource = "replicasets"
)

// AllResources is the default set.
var AllResources = []Resource{Pods, EndpointSlices, Deployments, ReplicaSets}

// Options scopes the watch.
type Options struct {
	// Namespace to watch; empty means all namespaces.
	Namespace string
	// Selector is a label selector ("app=web,tier!=db"). It selects pods and
	// ReplicaSets by their labels, Deployments by their pod template's labels,
	// and EndpointSlice endpoints by the labels of the pod they point at.
	Selector string
	// Resources to follow (default AllResources). A least-privilege identity
	// that may not list EndpointSlices can leave them out.
	Resources []Resource
	// Now stamps records (default time.Now).
	Now func() time.Time
}

// Start lists and watches the cluster and hands each record to sink until
// ctx ends or sink fails. It returns after every informer has synced, so
// the first records describe the state the watch started from (Reason
// "initial") and later ones what changed. It fails fast, naming the
// resource, when the identity may not list one.
//
// sink is called from the informers' goroutines, one call at a time and in
// time order (calls are serialised here), so it need not be safe for
// concurrent use. Its first error stops the watch: a recording with a hole
// would mislead, so nothing after it is sent, and Watch.Wait returns it.
func Start(ctx context.Context, client kubernetes.Interface, opts Options, sink timeline.Sink) (*Watch, error) {
	w, err := newWatcher(client, opts, sink)
	if err != nil {
		return nil, err
	}
	if err := w.preflight(ctx); err != nil {
		return nil, err
	}
	return w.start(ctx)
}

// Watch is a running watch.
type Watch struct {
	done chan struct{}
	w    *watcher
}

// Wait blocks until the watch has stopped (its ctx ended or its sink
// failed) and no handler can run any more; it returns the sink's first
// error, nil when only ctx ended.
func (wa *Watch) Wait() error {
	<-wa.done
	wa.w.mu.Lock()
	defer wa.w.mu.Unlock()
	return wa.w.err
}

type watcher struct {
	client   kubernetes.Interface
	opts     Options
	selector labels.Selector
	sink     timeline.Sink
	stop     context.CancelFunc // ends the informers once sink fails

	mu   sync.Mutex
	err  error               // sink's first error; nothing is sent after it
	last map[string]snapshot // by object key: the state last emitted

	podsSynced func() bool
	podInScope func(namespace, name string) bool
	endpoints  map[string]map[string]endpointState // endpoint key -> slice name -> state
}

// snapshot is what was last emitted for one object.
type snapshot struct {
	state string
	attrs map[string]string
}

func newWatcher(client kubernetes.Interface, opts Options, sink timeline.Sink) (*watcher, error) {
	if sink == nil {
		return nil, errors.New("no sink for the records")
	}
	sel, err := labels.Parse(opts.Selector)
	if err != nil {
		return nil, fmt.Errorf("label selector %q: %w", opts.Selector, err)
	}
	if len(opts.Resources) == 0 {
		opts.Resources = AllResources
	}
	for _, r := range opts.Resources {
		if !slices.Contains(AllResources, r) {
			return nil, fmt.Errorf("unknown resource %q (want one of %v)", r, AllResources)
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &watcher{
		client: client, opts: opts, selector: sel, sink: sink,
		last:      map[string]snapshot{},
		endpoints: map[string]map[string]endpointState{},
	}, nil
}

func (w *watcher) has(r Resource) bool { return slices.Contains(w.opts.Resources, r) }

// preflight lists each resource once, so a missing permission or a wrong
// namespace is one clear error instead of an informer retrying forever.
func (w *watcher) preflight(ctx context.Context) error {
	lo := metav1.ListOptions{Limit: 1, LabelSelector: w.opts.Selector}
	all := metav1.ListOptions{Limit: 1}
	ns := w.opts.Namespace
	checks := map[Resource]func() error{
		Pods: func() error { _, err := w.client.CoreV1().Pods(ns).List(ctx, lo); return err },
		EndpointSlices: func() error {
			_, err := w.client.DiscoveryV1().EndpointSlices(ns).List(ctx, all)
			return err
		},
		Deployments: func() error { _, err := w.client.AppsV1().Deployments(ns).List(ctx, all); return err },
		ReplicaSets: func() error { _, err := w.client.AppsV1().ReplicaSets(ns).List(ctx, lo); return err },
	}
	for _, r := range w.opts.Resources {
		if err := checks[r](); err != nil {
			where := "all namespaces"
			if ns != "" {
				where = "namespace " + ns
			}
			return fmt.Errorf("cannot list %s in %s: %w", r, where, err)
		}
	}
	return nil
}

func (w *watcher) start(ctx context.Context) (*Watch, error) {
	// Pods and ReplicaSets carry the selected labels themselves, so the
	// apiserver filters them; Deployments and EndpointSlices do not, so their
	// informers see the namespace and the handlers filter.
	selected := informers.NewSharedInformerFactoryWithOptions(w.client, 0,
		informers.WithNamespace(w.opts.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = w.opts.Selector }))
	unfiltered := informers.NewSharedInformerFactoryWithOptions(w.client, 0,
		informers.WithNamespace(w.opts.Namespace))

	w.podInScope = func(string, string) bool { return w.selector.Empty() }
	var errs []error
	add := func(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) {
		if _, err := inf.AddEventHandler(h); err != nil {
			errs = append(errs, err)
		}
	}
	if w.has(Pods) {
		inf := selected.Core().V1().Pods()
		lister := inf.Lister()
		w.podInScope = func(ns, name string) bool {
			if w.selector.Empty() {
				return true
			}
			_, err := lister.Pods(ns).Get(name)
			return err == nil
		}
		add(inf.Informer(), w.handler(w.pod))
	}
	if w.has(EndpointSlices) {
		add(unfiltered.Discovery().V1().EndpointSlices().Informer(), w.sliceHandler())
	}
	if w.has(Deployments) {
		add(unfiltered.Apps().V1().Deployments().Informer(), w.handler(w.deployment))
	}
	if w.has(ReplicaSets) {
		add(selected.Apps().V1().ReplicaSets().Informer(), w.handler(w.replicaSet))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// Start informers in their own context, so that a failed sync stops them
	// here instead of leaving them to the caller's.
	runCtx, stop := context.WithCancel(ctx)
	w.stop = stop
	selected.StartWithContext(runCtx)
	unfiltered.StartWithContext(runCtx)
	shutdown := func() {
		stop()
		selected.Shutdown()
		unfiltered.Shutdown()
	}
	for _, f := range []informers.SharedInformerFactory{selected, unfiltered} {
		for typ, ok := range f.WaitForCacheSync(runCtx.Done()) {
			if !ok {
				shutdown()
				if err := w.sinkErr(); err != nil {
					return nil, err
				}
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				return nil, fmt.Errorf("informer for %v did not sync", typ)
			}
		}
	}
	wa := &Watch{done: make(chan struct{}), w: w}
	go func() {
		<-runCtx.Done() // ctx ended, or sink failed and cancelled it
		shutdown()      // returns once no handler can run any more
		close(wa.done)
	}()
	return wa, nil
}

func (w *watcher) sinkErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// observation is what a handler derives from one object.
type observation struct {
	kind   timeline.Kind
	key    string // unique per object across resources
	object string
	state  string
	attrs  map[string]string
}

// handler adapts a function from an object to its observation into an
// informer handler; deleted reports whether the object is gone.
func (w *watcher) handler(observe func(obj any, deleted bool) (observation, bool)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if o, ok := observe(obj, false); ok {
				w.record(o, initial)
			}
		},
		UpdateFunc: func(_, obj any) {
			if o, ok := observe(obj, false); ok {
				w.record(o, false)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if o, ok := observe(obj, true); ok {
				w.record(o, false)
			}
		},
	}
}

// record emits o unless it equals what was last emitted for the same object.
// Stamping and sending under one lock keeps the records in time order across
// informers.
func (w *watcher) record(o observation, initial bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	prev, seen := w.last[o.key]
	if seen && prev.state == o.state && maps.Equal(prev.attrs, o.attrs) {
		return
	}
	reason := "added"
	switch {
	case initial:
		reason = "initial"
	case seen:
		reason = diff(prev, o.state, o.attrs)
	}
	if o.state == StateDeleted || o.state == stateRemoved {
		delete(w.last, o.key) // keeps memory flat over endless rollouts
	} else {
		w.last[o.key] = snapshot{state: o.state, attrs: o.attrs}
	}
	rec := timeline.Record{
		Kind: o.kind, Time: w.opts.Now(), Source: Source,
		Object: o.object, State: o.state, Reason: reason, Attrs: o.attrs,
	}
	if err := w.sink(&rec); err != nil {
		w.err = err
		w.stop()
	}
}

// Diff is the Reason the watcher gives a record of an object it has seen
// before: what changed from the state and attributes it last recorded
// (prevState, prevAttrs) to the new ones, as in "state Running→Ready;
// cond/Ready False→True". Callers that get object snapshots from elsewhere
// than an informer (the lab's cluster stand-in) use it to word their records
// as this package would.
func Diff(prevState string, prevAttrs map[string]string, state string, attrs map[string]string) string {
	return diff(snapshot{state: prevState, attrs: prevAttrs}, state, attrs)
}

// diff says what changed since prev: "state Running→Ready; cond/Ready False→True".
func diff(prev snapshot, state string, attrs map[string]string) string {
	var parts []string
	if prev.state != state {
		parts = append(parts, fmt.Sprintf("state %s→%s", prev.state, state))
	}
	keys := slices.Sorted(maps.Keys(attrs))
	for k := range prev.attrs {
		if _, ok := attrs[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		old, had := prev.attrs[k]
		cur, has := attrs[k]
		switch {
		case !had:
			parts = append(parts, fmt.Sprintf("%s=%s", k, cur))
		case !has:
			parts = append(parts, fmt.Sprintf("%s removed", k))
		case old != cur:
			parts = append(parts, fmt.Sprintf("%s %s→%s", k, old, cur))
		}
	}
	return strings.Join(parts, "; ")
}
