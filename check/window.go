package check

import (
	"strconv"
	"strings"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/workload"
)

// The stop window is how long after a pod turns Terminating new requests
// can still reach it; the preStop (or the app's drain) must cover it. Each
// path to the pod makes its own:
//
//   - ip targets: the controller deregisters the pod (controller lag), then
//     every load balancer node learns it (propagation P).
//   - ingress-nginx: the controller's sync lag; the cloud load balancer in
//     front targets nginx, not the pods.
//   - instance targets: nothing deregisters (the targets are nodes). Each
//     node's kube-proxy stops sending new connections to the pod once it
//     has the EndpointSlice update, at its next sync. With
//     externalTrafficPolicy Local a node whose last ready pod of the
//     Service terminates keeps forwarding to it (KEP-1669: serving
//     terminating endpoints are used when no ready one is left) while its
//     health-check node port fails, until the load balancer's health check
//     marks the node unhealthy.
//
// A workload with several paths is judged by the longest.

// term is one named part of a stop window.
type term struct {
	name   string
	d      time.Duration
	detail string // what the figure is, after it in messages; may be empty
	in     *Input // what --recommend lists for it; nil when another input already does
}

// window is one path's stop window.
type window struct {
	terms []term
	// detect is the health-check part of a Local instance route's window:
	// only a pod that still serves (passes its readiness probe) covers it.
	detect time.Duration
	// sends says what still sends new requests during the window.
	sends string
}

func (w window) total() time.Duration {
	var d time.Duration
	for _, t := range w.terms {
		d += t.d
	}
	return d
}

// text names the window's terms for messages: "controller lag 5s +
// propagation 17s".
func (w window) text() string {
	parts := make([]string, len(w.terms))
	for i, t := range w.terms {
		parts[i] = t.name + " " + secs(t.d)
		if t.detail != "" {
			parts[i] += " (" + t.detail + ")"
		}
	}
	return strings.Join(parts, " + ")
}

// ipWindow is the window of ip targets (and of a workload check sees no
// route for): the controller's lag to deregister, then P.
func ipWindow(o workload.Options) window {
	return window{terms: []term{{name: "controller lag", d: o.ControllerLag}, {name: "propagation", d: o.Propagation}},
		sends: "the load balancer still sends new requests"}
}

// routeWindow is the stop window of one route.
func routeWindow(o workload.Options, r *workload.Route) window {
	switch {
	case r.LB == workload.LBNginx && r.Nginx != nil:
		return window{terms: []term{{name: "ingress-nginx's sync lag", d: r.Nginx.SyncLag}},
			sends: "ingress-nginx still sends new requests"}
	case r.TargetType == "instance":
		return instanceWindow(o, r)
	}
	return ipWindow(o)
}

// kubeProxySync is the window's kube-proxy term: a node applies the change
// at its next sync, no sooner than min-sync-period after its previous one.
var kubeProxySync = Input{Name: "kube-proxy sync", Value: defaults.KubeProxyMinSyncPeriod, Source: "default",
	Note: "kube-proxy's min-sync-period (iptables and nftables), pkg/proxy/apis/config/v1alpha1/defaults.go; the sync's own duration is not published and not included"}

// instanceWindow: the EndpointSlice update reaches every kube-proxy, which
// applies it at its next sync. No public figure bounds the update's
// latency (kube-proxy's network programming latency SLO has none), so the
// controller-lag figure stands in for it: the controller's lag is the same
// endpoint update plus a reconcile. With Local, add the load balancer's
// time to mark the node unhealthy: unhealthy threshold × interval, the
// worst case from the node's first failing answer.
func instanceWindow(o workload.Options, r *workload.Route) window {
	sync := kubeProxySync
	w := window{terms: []term{{name: "endpoint update", d: o.ControllerLag, detail: "the controller-lag figure"},
		{name: "kube-proxy sync", d: sync.Value, detail: "min-sync-period", in: &sync}},
		sends: "the nodes' kube-proxy still forwards new requests to it"}
	if !r.Local {
		return w
	}
	hc := r.HealthCheck
	w.detect = time.Duration(hc.UnhealthyThreshold) * hc.Interval
	what := "unhealthy threshold " + strconv.Itoa(hc.UnhealthyThreshold) + " × interval " + secs(hc.Interval)
	src := "default"
	if r.HealthAt.Line != r.Front.Line("metadata") {
		src = "annotation"
	}
	in := &Input{Name: "health-check detection", Value: w.detect, Source: src,
		Note: r.LB + " (" + r.Via + ") health check, " + what + ", externalTrafficPolicy Local: a node whose last ready pod terminates keeps forwarding to it until then (KEP-1669)"}
	w.terms = append(w.terms, term{name: r.LB + " health check", d: w.detect, detail: what + "; externalTrafficPolicy Local", in: in})
	return w
}

// workloadWindow is the longest window of w's routes; ipWindow when check
// sees none (a Service without a load balancer in the input, or no Service).
func workloadWindow(o workload.Options, w *workload.Workload) window {
	if len(w.Routes) == 0 {
		return ipWindow(o)
	}
	var best window
	for i := range w.Routes {
		if win := routeWindow(o, &w.Routes[i]); i == 0 || win.total() > best.total() {
			best = win
		}
	}
	return best
}

// instanceRoutes says whether any of w's routes goes through kube-proxy.
func instanceRoutes(w *workload.Workload) bool { return pinnedWindowOf(w) > 0 }

// judgedBy is o as w is judged by (o.ForWorkload(w)), its stop window set
// to w's (workloadWindow): every rule, fix and recommendation sized from
// the stop window then agrees.
func judgedBy(o workload.Options, w *workload.Workload) workload.Options {
	o = o.ForWorkload(w)
	o.Window = workloadWindow(o, w).total()
	return o
}

// windowText says what the stop window of w is made of, for messages.
func windowText(c *run) string { return c.win.text() }

// drainCredit is how much of the app's drain (Workload.DrainDelay) counts
// toward the window. A draining app keeps answering, which does what a
// preStop sleep does, except for a Local route's health-check part: there
// the node forwards to the pod only while it still serves, and once the
// kubelet sees its readiness probe fail the node has no local endpoint and
// drops new connections the load balancer still sends. rollsafe/graceful
// fails readiness at SIGTERM, and check cannot see from manifests whether
// another app keeps passing it, so the drain counts only up to the earliest
// the kubelet can mark the pod not ready: failureThreshold - 1 periods.
func (c *run) drainCredit(w *workload.Workload) time.Duration {
	d := w.DrainDelay
	if c.win.detect == 0 {
		return d
	}
	for _, ct := range w.Containers {
		if p := ct.Readiness; p != nil {
			d = min(d, time.Duration(p.FailureThreshold-1)*p.Period)
		}
	}
	return d
}
