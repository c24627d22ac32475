package check

import (
	"strconv"
	"strings"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/workload"
)

// The rules of the ingress-nginx hop. nginx routes to the pods' endpoints
// itself, so whatever cloud load balancer is in front targets the
// controller's pods, which a rollout of the app never touches: the app's
// stop window is nginx's sync lag, not the cloud LB's propagation, and the
// connections that matter are nginx's own pooled ones to the pods.

// nginxRoutes returns w's ingress-nginx routes.
func nginxRoutes(w *workload.Workload) []*workload.Route {
	var out []*workload.Route
	for i := range w.Routes {
		if r := &w.Routes[i]; r.LB == workload.LBNginx && r.Nginx != nil {
			out = append(out, r)
		}
	}
	return out
}

// nginxOnly says whether ingress-nginx is the only way traffic reaches w:
// then no cloud load balancer deregisters its pods.
func nginxOnly(w *workload.Workload) bool {
	return len(w.Routes) > 0 && len(nginxRoutes(w)) == len(w.Routes)
}

// maxSyncLag is the longest sync lag of w's nginx routes (0 with none).
func maxSyncLag(w *workload.Workload) time.Duration {
	var lag time.Duration
	for _, r := range nginxRoutes(w) {
		lag = max(lag, r.Nginx.SyncLag)
	}
	return lag
}

// nginxKeepaliveTimeout is the longest upstream keep-alive of w's nginx
// routes that keep connections (0 with none).
func nginxKeepaliveTimeout(w *workload.Workload) time.Duration {
	var d time.Duration
	for _, r := range nginxRoutes(w) {
		if r.Nginx.UpstreamKeepaliveConnections > 0 {
			d = max(d, r.Nginx.UpstreamKeepaliveTimeout)
		}
	}
	return d
}

// nginxPreStopTooShort: nginx keeps sending new requests to a terminating
// pod until its workers have the new endpoints, up to the sync lag after
// the EndpointSlice changed. Only for workloads nginx alone reaches: with
// a cloud LB route too, prestop-too-short judges the stop window.
func nginxPreStopTooShort(c *run, w *workload.Workload) {
	if !nginxOnly(w) {
		return
	}
	c.shortPreStops(w, "less than ingress-nginx's sync lag "+secs(c.opts.StopWindow())+" ("+nginxVia(w)+
		"): nginx still sends new requests to the pod after SIGTERM; the cloud load balancer in front targets the controller, not these pods, so its propagation does not apply")
}

// nginxVia names the Ingresses of w's nginx routes.
func nginxVia(w *workload.Workload) string {
	var via []string
	for _, r := range nginxRoutes(w) {
		via = append(via, r.Via)
	}
	return strings.Join(via, ", ")
}

// nginxKeepalive: nginx pools idle connections to the pods for
// upstream-keepalive-timeout. It drops one the app closes as soon as it
// sees the close, so only a request it sends on the connection at that
// moment fails: a warning, since real nginx loses few requests this way
// (docs/rules/nginx-upstream-keepalive.md has the counts). nginx passes
// such a failure on only for an idempotent request, so POSTs get the 502
// and GET probes do not.
func nginxKeepalive(c *run, w *workload.Workload) {
	if !w.Served() || w.AppIdleTimeout == 0 {
		return
	}
	var worst *workload.Route // the keep-alive is the controller's, one per ConfigMap
	for _, r := range nginxRoutes(w) {
		n := r.Nginx
		if n.UpstreamKeepaliveConnections > 0 && w.AppIdleTimeout <= n.UpstreamKeepaliveTimeout &&
			(worst == nil || n.UpstreamKeepaliveTimeout > worst.Nginx.UpstreamKeepaliveTimeout) {
			worst = r
		}
	}
	if worst == nil {
		return
	}
	v := n(c.rec.MinAppIdleTimeout)
	c.report(w, Warning, nil, w.Object.Line("metadata", "annotations", workload.AnnotationAppIdleTimeout),
		yamlFix("# make the app's keep-alive (idle) timeout longer than nginx's "+defaults.NginxKeyUpstreamKeepaliveTimeout+
			", e.g. Go: http.Server{IdleTimeout: "+v+" * time.Second}", "metadata:", "  annotations:",
			"    "+workload.AnnotationAppIdleTimeout+": \""+v+"\""),
		// The patch records the new keep-alive; the app's own setting is a code change.
		[]Patch{annotationPatch(w.Object, c.opts.DefaultNamespace, workload.AnnotationAppIdleTimeout, v)},
		"%s keeps idle connections %s but ingress-nginx (%s) keeps its idle connections to the pods for %s (%s, %s): the app closes connections nginx still holds; nginx drops one when it sees the close, but a request it sends on one as the app closes it fails (502) unless nginx passes it to another pod, which it does only when %s lists error, and never for a POST, LOCK or PATCH it already sent unless the list holds non_idempotent: rare, so a rollout's probe seldom sees it, but clients' writes get the 502s",
		w.Ref, secs(w.AppIdleTimeout), worst.Via, secs(worst.Nginx.UpstreamKeepaliveTimeout), defaults.NginxKeyUpstreamKeepaliveTimeout,
		settingWhere(worst, worst.Nginx.KeepaliveTimeoutAt, c.opts.DefaultNamespace), defaults.NginxKeyProxyNextUpstream)
}

// settingWhere says where an nginx setting comes from: the Ingress's
// annotation, the controller's ConfigMap, or the default.
func settingWhere(r *workload.Route, at workload.Where, ns string) string {
	switch {
	case at.Object != nil:
		return "from " + at.Object.Ref(ns) + " line " + strconv.Itoa(at.Line)
	case at.Line != r.Front.Line("metadata"):
		return "from the Ingress's annotation"
	}
	return "the ingress-nginx default"
}

// retriesOn says whether nginx passes a failed request to another pod:
// proxy-next-upstream lists a case and not "off", and more than one try
// is allowed (0 is unlimited).
func retriesOn(n *workload.Nginx) bool {
	cases := strings.Fields(n.ProxyNextUpstream)
	some := false
	for _, f := range cases {
		switch f {
		case "off":
			return false
		case "non_idempotent":
		default:
			some = true
		}
	}
	return some && n.ProxyNextUpstreamTries != 1
}

// nginxRetriesHide: with retries on and non_idempotent not listed, nginx
// hides from an idempotent request a failure a POST on the same path
// gets: a GET-only probe proves less than it seems.
func nginxRetriesHide(c *run, w *workload.Workload) {
	if !w.Served() {
		return
	}
	for _, r := range nginxRoutes(w) {
		n := r.Nginx
		if !retriesOn(n) || strings.Contains(" "+n.ProxyNextUpstream+" ", " non_idempotent ") {
			continue
		}
		tries := "unlimited tries"
		if n.ProxyNextUpstreamTries > 0 {
			tries = "up to " + strconv.Itoa(n.ProxyNextUpstreamTries) + " tries"
		}
		obj, line := r.Locate(n.NextUpstreamAt)
		c.report(w, Info, obj, line,
			yamlFix("# no manifest change: probe the path with the requests it carries, not only GETs, e.g.",
				"# rollsafe probe https://<host>/<path> -X POST --body '<a request the app accepts>'",
				"# (probe's summary says when every request it sent was idempotent)"), nil,
			"ingress-nginx (%s) passes a request that failed on one pod to another (%s %q, %s; %s): a GET (or any method but POST, LOCK and PATCH) that fails on a terminating pod or a closed keep-alive connection is retried and answered, but a POST, LOCK or PATCH nginx already sent is not: a probe that sends only GETs can pass while clients' POSTs fail",
			r.Via, defaults.NginxKeyProxyNextUpstream, n.ProxyNextUpstream, settingWhere(r, n.NextUpstreamAt, c.opts.DefaultNamespace), tries)
	}
}
