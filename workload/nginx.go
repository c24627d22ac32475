package workload

import (
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/manifest"
)

// LBNginx is Route.LB for an Ingress ingress-nginx serves: the hop is
// nginx in the cluster, routing to the pods' endpoints itself. Whatever
// cloud load balancer fronts the controller's pods is not part of the
// route (it targets the controller, which a rollout of the app never
// touches), so the route has no AWS target type, target health or
// deregistration delay.
const LBNginx = "nginx"

// Nginx is an ingress-nginx route's settings, resolved as the controller
// does: the Ingress's annotations over the controller's ConfigMap (when
// the input holds it) over the ConfigMap defaults (package defaults).
type Nginx struct {
	// ProxyNextUpstream is proxy_next_upstream: when nginx passes a
	// request to the next endpoint ("error timeout"; "off" never).
	ProxyNextUpstream string `json:"proxyNextUpstream"`
	// ProxyNextUpstreamTries is proxy_next_upstream_tries, the first try
	// included (0: unlimited).
	ProxyNextUpstreamTries int `json:"proxyNextUpstreamTries"`
	// UpstreamKeepaliveTimeout is how long nginx keeps an idle connection
	// to a pod for reuse; the app's keep-alive must outlast it.
	UpstreamKeepaliveTimeout time.Duration `json:"upstreamKeepaliveTimeout"`
	// UpstreamKeepaliveConnections is the idle connections kept per
	// worker (0: no keep-alive to the pods).
	UpstreamKeepaliveConnections int `json:"upstreamKeepaliveConnections"`
	// UpstreamKeepaliveRequests is the requests one connection carries.
	UpstreamKeepaliveRequests int           `json:"upstreamKeepaliveRequests"`
	ProxyReadTimeout          time.Duration `json:"proxyReadTimeout"`
	ProxyConnectTimeout       time.Duration `json:"proxyConnectTimeout"`
	// SyncLag is the longest the controller's workers take to route by an
	// endpoint change (defaults.NginxSyncLag; no manifest setting sets it).
	SyncLag time.Duration `json:"syncLag"`

	// ConfigMap is the controller's ConfigMap when the input holds it
	// (named defaults.NginxConfigMapName, or labelled as the project's
	// manifests and chart label it); nil otherwise.
	ConfigMap *manifest.Object `json:"-"`
	// Where each setting is written: an annotation's line on the Ingress,
	// a key's line in the ConfigMap, or the Ingress's metadata when the
	// default applies.
	NextUpstreamAt, TriesAt, ReadTimeoutAt, ConnectTimeoutAt        Where `json:"-"`
	KeepaliveTimeoutAt, KeepaliveConnectionsAt, KeepaliveRequestsAt Where `json:"-"`
}

// isNginx says whether ingress-nginx serves the Ingress: by
// ingressClassName (its IngressClass's controller, or the conventional
// name "nginx" when the class is not among the inputs), by the legacy
// class annotation, or by a default IngressClass of ingress-nginx.
func (g *graph) isNginx(ing *networkingv1.Ingress) bool {
	if c := ing.Spec.IngressClassName; c != nil {
		if ic, ok := g.classes[*c]; ok {
			return ic.Spec.Controller == defaults.NginxController
		}
		return *c == defaults.NginxIngressClass
	}
	if c, ok := ing.Annotations[defaults.IngressClassAnnotation]; ok {
		return c == defaults.NginxIngressClass
	}
	return g.defaultNginx
}

// isNginxConfigMap says whether o is ingress-nginx's ConfigMap: the
// static manifests' name (a Helm release prefixes it) or the labels both
// the chart and the static manifests give it.
func isNginxConfigMap(o *manifest.Object) bool {
	cm, ok := o.Obj.(*corev1.ConfigMap)
	if !ok {
		return false
	}
	if cm.Name == defaults.NginxConfigMapName || strings.HasSuffix(cm.Name, "-"+defaults.NginxConfigMapName) {
		return true
	}
	return cm.Labels["app.kubernetes.io/name"] == "ingress-nginx" && cm.Labels["app.kubernetes.io/component"] == "controller"
}

// nginxRoute resolves an Ingress ingress-nginx serves.
func (g *graph) nginxRoute(io, s *manifest.Object) Route {
	meta := Where{Line: io.Line("metadata")}
	n := &Nginx{ProxyNextUpstream: defaults.NginxProxyNextUpstream, ProxyNextUpstreamTries: defaults.NginxProxyNextUpstreamTries,
		UpstreamKeepaliveTimeout: defaults.NginxUpstreamKeepaliveTimeout, UpstreamKeepaliveConnections: defaults.NginxUpstreamKeepaliveConnections,
		UpstreamKeepaliveRequests: defaults.NginxUpstreamKeepaliveRequests, ProxyReadTimeout: defaults.NginxProxyReadTimeout,
		ProxyConnectTimeout: defaults.NginxProxyConnectTimeout, SyncLag: defaults.NginxSyncLag, ConfigMap: g.nginxConfig,
		NextUpstreamAt: meta, TriesAt: meta, ReadTimeoutAt: meta, ConnectTimeoutAt: meta,
		KeepaliveTimeoutAt: meta, KeepaliveConnectionsAt: meta, KeepaliveRequestsAt: meta}
	r := Route{LB: LBNginx, Front: io, Service: s, Via: io.Ref(g.opts.DefaultNamespace), Nginx: n}
	ann := AnnotationsOf(io)
	var data map[string]string
	if n.ConfigMap != nil {
		data = n.ConfigMap.Obj.(*corev1.ConfigMap).Data
	}
	// setting reads key from the Ingress's annotations (when annotated),
	// else from the ConfigMap, recording where it was written.
	setting := func(key string, annotated bool, at *Where) (string, *manifest.Object, int, bool) {
		if v, ok := ann[defaults.NginxAnnotationPrefix+key]; ok && annotated {
			line := io.Line("metadata", "annotations", defaults.NginxAnnotationPrefix+key)
			*at = Where{Line: line}
			return v, io, line, true
		}
		if v, ok := data[key]; ok {
			line := n.ConfigMap.Line("data", key)
			*at = Where{n.ConfigMap, line}
			return v, n.ConfigMap, line, true
		}
		return "", nil, 0, false
	}
	if v, _, _, ok := setting(defaults.NginxKeyProxyNextUpstream, true, &n.NextUpstreamAt); ok {
		n.ProxyNextUpstream = strings.Join(strings.Fields(v), " ")
	}
	integer := func(key string, annotated bool, at *Where, dst *int) {
		if v, o, line, ok := setting(key, annotated, at); ok {
			if i, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && i >= 0 {
				*dst = i
			} else {
				g.errorf(o, line, "%s %q: want a whole number", key, v)
			}
		}
	}
	seconds := func(key string, annotated bool, at *Where, dst *time.Duration) {
		s := int(*dst / time.Second)
		integer(key, annotated, at, &s)
		*dst = time.Duration(s) * time.Second
	}
	integer(defaults.NginxKeyProxyNextUpstreamTries, true, &n.TriesAt, &n.ProxyNextUpstreamTries)
	seconds(defaults.NginxKeyProxyReadTimeout, true, &n.ReadTimeoutAt, &n.ProxyReadTimeout)
	seconds(defaults.NginxKeyProxyConnectTimeout, true, &n.ConnectTimeoutAt, &n.ProxyConnectTimeout)
	// The upstream keep-alive is global: ConfigMap keys, no annotation
	// (kubernetes/ingress-nginx#11472 asks for one).
	seconds(defaults.NginxKeyUpstreamKeepaliveTimeout, false, &n.KeepaliveTimeoutAt, &n.UpstreamKeepaliveTimeout)
	integer(defaults.NginxKeyUpstreamKeepaliveConns, false, &n.KeepaliveConnectionsAt, &n.UpstreamKeepaliveConnections)
	integer(defaults.NginxKeyUpstreamKeepaliveRequests, false, &n.KeepaliveRequestsAt, &n.UpstreamKeepaliveRequests)
	return r
}
