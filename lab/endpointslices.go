package lab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/rollsafe/rollsafe/lab/kubeproxy"
)

// podNetwork is the lab's pod network on a real control plane when
// EndpointSlices must list the pods (instance and ingress paths). The API
// server refuses loopback endpoint addresses, and loopback is the only
// network the lab uses, so a pod listens on 127.b.x.y while its status (and
// so its EndpointSlice endpoint) says 198.18.x.y, RFC 2544's benchmarking
// range, which no real network routes. Whoever dials a pod from what the
// API says (kube-proxy, nginx) maps the address back first, as the VPC
// would route it; nothing is sent to 198.18.0.0/15.
type podNetwork struct{ b byte }

// apiNet is the first two bytes of every pod address the API shows.
var apiNet = [2]byte{198, 18}

// newPodNetwork picks this run's loopback /16 (127.b, b ≥ 1: 127.0.x.y
// holds the nodes and the ingress pods).
func newPodNetwork() podNetwork { return podNetwork{b: byte(1 + rand.IntN(254))} }

// first is node agent i's first pod address (1-based): each agent counts
// up from its own third byte, so their pods never share an address.
func (pn podNetwork) first(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, pn.b, byte(1 + (i-1)*32), 1})
}

// inAPI is what a pod listening on ip shows in its status.
func (pn podNetwork) inAPI(ip netip.Addr) netip.Addr {
	a := ip.As4()
	return netip.AddrFrom4([4]byte{apiNet[0], apiNet[1], a[2], a[3]})
}

// local is where the pod the API shows at ip listens; ok is false for an
// address outside the lab's pod network.
func (pn podNetwork) local(ip netip.Addr) (netip.Addr, bool) {
	a := ip.As4()
	if !ip.Is4() || a[0] != apiNet[0] || a[1] != apiNet[1] {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{127, pn.b, a[2], a[3]}), true
}

// sliceFeed watches the Service's EndpointSlices as kube-proxy and
// ingress-nginx do (label kubernetes.io/service-name) and hands every
// change, merged over all of the Service's slices, to apply. The
// endpoints' conditions are the EndpointSlice controller's own.
type sliceFeed struct {
	pn    podNetwork
	node  func(string) string // a Node's name -> the lab node's (kube-proxy's)
	apply func([]kubeproxy.Endpoint)
	inf   cache.SharedIndexInformer
	stop  chan struct{}

	// mu and closed keep apply from running once close has returned: the
	// informer's handler may still be in a call when its stop is closed,
	// and the nodes and nginx are torn down next.
	mu     sync.Mutex
	closed bool
}

// watchSlices starts the feed and returns once its cache has synced.
func watchSlices(ctx context.Context, cs kubernetes.Interface, ns, service string, f *sliceFeed) error {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service}).String()
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = sel }))
	f.inf = factory.Discovery().V1().EndpointSlices().Informer()
	f.stop = make(chan struct{})
	// One handler goroutine: the snapshots reach apply in the order the
	// API server sent the changes.
	changed := func(any) { f.changed() }
	if _, err := f.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: changed, UpdateFunc: func(_, o any) { changed(o) }, DeleteFunc: changed,
	}); err != nil {
		return err
	}
	factory.Start(f.stop)
	if !cache.WaitForCacheSync(ctx.Done(), f.inf.HasSynced) {
		f.close()
		return fmt.Errorf("EndpointSlice watch of %s/%s did not sync: %w", ns, service, context.Cause(ctx))
	}
	return nil
}

// changed hands apply the Service's endpoints as they are now.
func (f *sliceFeed) changed() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.apply(f.endpoints())
	}
}

// endpoints merges the Service's slices: an address two slices list (the
// controller moving it) counts once, as in kube-proxy's EndpointSliceCache.
func (f *sliceFeed) endpoints() []kubeproxy.Endpoint {
	var out []kubeproxy.Endpoint
	seen := map[netip.AddrPort]bool{}
	for _, obj := range f.inf.GetStore().List() {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || s.AddressType != discoveryv1.AddressTypeIPv4 || len(s.Ports) == 0 || s.Ports[0].Port == nil {
			continue
		}
		for _, ep := range s.Endpoints {
			e, ok := f.endpoint(ep, uint16(*s.Ports[0].Port))
			if ok && !seen[e.Addr] {
				seen[e.Addr] = true
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b kubeproxy.Endpoint) int { return a.Addr.Compare(b.Addr) })
	return out
}

// endpoint is ep as kube-proxy reads it: a nil ready or serving means
// true, a nil terminating false (the EndpointSlice API's rule).
func (f *sliceFeed) endpoint(ep discoveryv1.Endpoint, port uint16) (kubeproxy.Endpoint, bool) {
	if len(ep.Addresses) == 0 {
		return kubeproxy.Endpoint{}, false
	}
	api, err := netip.ParseAddr(ep.Addresses[0])
	if err != nil {
		return kubeproxy.Endpoint{}, false
	}
	ip, ok := f.pn.local(api)
	if !ok {
		return kubeproxy.Endpoint{}, false
	}
	c := ep.Conditions
	e := kubeproxy.Endpoint{Addr: netip.AddrPortFrom(ip, port),
		Ready: c.Ready == nil || *c.Ready, Serving: c.Serving == nil || *c.Serving, Terminating: c.Terminating != nil && *c.Terminating}
	if ep.NodeName != nil {
		e.Node = f.node(*ep.NodeName)
	}
	return e, true
}

func (f *sliceFeed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stop != nil && !f.closed {
		close(f.stop)
	}
	f.closed = true
}
