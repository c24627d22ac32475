package defaults

import (
	"strconv"
	"time"
)

// ingress-nginx (kubernetes/ingress-nginx), the in-cluster nginx hop many
// EKS users put behind an NLB or a Classic ELB, and the nginx directives
// its settings become. Sources: the controller's ConfigMap documentation
// (docs/user-guide/nginx-configuration/configmap.md), its defaults in
// internal/ingress/controller/config/config.go (NewDefault), its flags
// (pkg/flags/flags.go) and the Lua balancer
// (rootfs/etc/nginx/lua/balancer.lua), read at release v1.15.1.
const (
	// NginxIngressClass is the class name the controller serves by
	// default (--ingress-class, ingressclass.DefaultAnnotationValue), as
	// spec.ingressClassName or the legacy IngressClassAnnotation;
	// NginxController is its IngressClass spec.controller
	// (--controller-class, ingressclass.DefaultControllerName).
	NginxIngressClass = "nginx"
	NginxController   = "k8s.io/ingress-nginx"
	// NginxAnnotationPrefix begins the Ingress annotations the controller
	// reads (--annotations-prefix, parser.DefaultAnnotationsPrefix).
	NginxAnnotationPrefix = "nginx.ingress.kubernetes.io/"
	// NginxConfigMapName is the controller's ConfigMap in the project's
	// static manifests and in the Helm chart for a release named
	// ingress-nginx (--configmap=$(POD_NAMESPACE)/ingress-nginx-controller,
	// deploy/static/provider/aws/deploy.yaml). The controller has no
	// default: without --configmap it reads none.
	NginxConfigMapName = "ingress-nginx-controller"

	// The settings' names: each is a ConfigMap key, and those marked
	// "annotation too" are also Ingress annotations after
	// NginxAnnotationPrefix (docs/user-guide/nginx-configuration/annotations.md).
	// The upstream-keepalive-* keys are ConfigMap keys only: no annotation
	// sets them per Ingress (asked for in kubernetes/ingress-nginx#11472).
	NginxKeyProxyNextUpstream         = "proxy-next-upstream"       // annotation too
	NginxKeyProxyNextUpstreamTries    = "proxy-next-upstream-tries" // annotation too
	NginxKeyProxyReadTimeout          = "proxy-read-timeout"        // annotation too
	NginxKeyProxyConnectTimeout       = "proxy-connect-timeout"     // annotation too
	NginxKeyUpstreamKeepaliveTimeout  = "upstream-keepalive-timeout"
	NginxKeyUpstreamKeepaliveConns    = "upstream-keepalive-connections"
	NginxKeyUpstreamKeepaliveRequests = "upstream-keepalive-requests"
	NginxKeyWorkerShutdownTimeout     = "worker-shutdown-timeout"
	NginxKeyProxyNextUpstreamTimeout  = "proxy-next-upstream-timeout" // annotation too
)

// ingress-nginx's ConfigMap defaults (config.go NewDefault; configmap.md).
const (
	// NginxProxyNextUpstream becomes proxy_next_upstream: a request goes to
	// the next upstream on a connection error or a timeout. nginx itself
	// never passes a POST, LOCK or PATCH on once it was sent to an
	// upstream (since nginx 1.9.13) unless the list holds non_idempotent:
	// https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_next_upstream
	NginxProxyNextUpstream = "error timeout"
	// NginxProxyNextUpstreamTries is proxy_next_upstream_tries, the first
	// try included (nginx's own default is 0, unlimited).
	NginxProxyNextUpstreamTries = 3
	// NginxProxyNextUpstreamTimeout is proxy_next_upstream_timeout
	// (0: unlimited).
	NginxProxyNextUpstreamTimeout = 0 * time.Second
	// NginxUpstreamKeepaliveTimeout is the upstream keepalive_timeout: how
	// long nginx keeps an idle connection to a pod open for reuse. The app's
	// keep-alive must outlast it, as it must an ALB's idle timeout.
	NginxUpstreamKeepaliveTimeout = 60 * time.Second
	// NginxUpstreamKeepaliveConnections is the upstream keepalive: idle
	// connections cached per worker process.
	NginxUpstreamKeepaliveConnections = 320
	// NginxUpstreamKeepaliveRequests is the upstream keepalive_requests:
	// requests per connection before nginx closes it.
	NginxUpstreamKeepaliveRequests = 10000
	// NginxProxyReadTimeout is proxy_read_timeout (between two reads);
	// NginxProxyConnectTimeout proxy_connect_timeout.
	NginxProxyReadTimeout    = 60 * time.Second
	NginxProxyConnectTimeout = 5 * time.Second
	// NginxClientKeepaliveTimeout is keepalive_timeout towards clients
	// (the load balancer in front), the ConfigMap's keep-alive key.
	NginxClientKeepaliveTimeout = 75 * time.Second
	// NginxWorkerShutdownTimeout is worker_shutdown_timeout: how long the
	// old workers of a reload may finish their requests.
	NginxWorkerShutdownTimeout = 240 * time.Second
)

// How soon ingress-nginx's workers route by an EndpointSlice change.
// The controller syncs through a token bucket of --sync-rate-limit syncs
// per second, burst 1 (pkg/flags/flags.go; internal/ingress/controller/nginx.go),
// and POSTs endpoint-only changes to the Lua balancer without a reload;
// each worker polls what was POSTed every BACKENDS_SYNC_INTERVAL (balancer.lua:
// "it will take <the delay until controller POSTed the backend object to the
// Nginx endpoint> + BACKENDS_SYNC_INTERVAL").
const (
	// NginxSyncRateLimit is --sync-rate-limit (syncs per second).
	NginxSyncRateLimit = 0.3
	// NginxSyncInterval is the shortest time between two syncs:
	// 1 s / NginxSyncRateLimit = 10/3 s, to the nanosecond.
	NginxSyncInterval = 10 * time.Second / 3
	// NginxBackendsSyncInterval is BACKENDS_SYNC_INTERVAL.
	NginxBackendsSyncInterval = 1 * time.Second
	// NginxSyncLag is the longest a worker can take to learn an endpoint
	// change once the controller saw it: a sync waits at most one
	// NginxSyncInterval for its token, and a worker polls within one
	// NginxBackendsSyncInterval. The controller's watch latency comes on
	// top and is not published. check sizes a preStop by it; the lab's
	// nginx hop runs with it.
	NginxSyncLag = NginxSyncInterval + NginxBackendsSyncInterval
)

const (
	srcNginxConfigMap = "https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/configmap/ (config.go NewDefault)"
	srcNginxAnn       = "https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/"
	srcNginxClass     = "kubernetes/ingress-nginx internal/ingress/controller/ingressclass/ingressclass.go; pkg/flags/flags.go"
	srcNginxPrefix    = "kubernetes/ingress-nginx internal/ingress/annotations/parser/main.go, DefaultAnnotationsPrefix"
	srcNginxStatic    = "kubernetes/ingress-nginx deploy/static/provider/aws/deploy.yaml (--configmap)"
	srcNginxSync      = "kubernetes/ingress-nginx pkg/flags/flags.go --sync-rate-limit; internal/ingress/controller/nginx.go NewTokenBucketRateLimiter(rate, 1)"
	srcNginxLua       = "kubernetes/ingress-nginx rootfs/etc/nginx/lua/balancer.lua, BACKENDS_SYNC_INTERVAL"
	srcNginxLag       = "rollsafe: NginxSyncInterval + NginxBackendsSyncInterval (" + srcNginxSync + "; " + srcNginxLua + "); watch latency unpublished"
)

// nginxFacts are the Table entries of this file.
var nginxFacts = []Fact{
	{"NginxIngressClass", NginxIngressClass, srcNginxClass, nil},
	{"NginxController", NginxController, srcNginxClass, nil},
	{"NginxAnnotationPrefix", NginxAnnotationPrefix, srcNginxPrefix, nil},
	{"NginxConfigMapName", NginxConfigMapName, srcNginxStatic, nil},
	{"NginxKeyProxyNextUpstream", NginxKeyProxyNextUpstream, srcNginxAnn, nil},
	{"NginxKeyProxyNextUpstreamTries", NginxKeyProxyNextUpstreamTries, srcNginxAnn, nil},
	{"NginxKeyProxyReadTimeout", NginxKeyProxyReadTimeout, srcNginxAnn, nil},
	{"NginxKeyProxyConnectTimeout", NginxKeyProxyConnectTimeout, srcNginxAnn, nil},
	{"NginxKeyUpstreamKeepaliveTimeout", NginxKeyUpstreamKeepaliveTimeout, srcNginxConfigMap, nil},
	{"NginxKeyUpstreamKeepaliveConns", NginxKeyUpstreamKeepaliveConns, srcNginxConfigMap, nil},
	{"NginxKeyUpstreamKeepaliveRequests", NginxKeyUpstreamKeepaliveRequests, srcNginxConfigMap, nil},
	{"NginxKeyWorkerShutdownTimeout", NginxKeyWorkerShutdownTimeout, srcNginxConfigMap, nil},
	{"NginxKeyProxyNextUpstreamTimeout", NginxKeyProxyNextUpstreamTimeout, srcNginxAnn, nil},
	{"NginxProxyNextUpstream", NginxProxyNextUpstream, srcNginxConfigMap, nil},
	{"NginxProxyNextUpstreamTries", strconv.Itoa(NginxProxyNextUpstreamTries), srcNginxConfigMap, []string{"proxy-next-upstream-tries"}},
	{"NginxProxyNextUpstreamTimeout", secs(NginxProxyNextUpstreamTimeout), srcNginxConfigMap, nil},
	{"NginxUpstreamKeepaliveTimeout", secs(NginxUpstreamKeepaliveTimeout), srcNginxConfigMap, []string{"upstream-keepalive-timeout"}},
	{"NginxUpstreamKeepaliveConnections", strconv.Itoa(NginxUpstreamKeepaliveConnections), srcNginxConfigMap, []string{"upstream-keepalive-connections"}},
	{"NginxUpstreamKeepaliveRequests", strconv.Itoa(NginxUpstreamKeepaliveRequests), srcNginxConfigMap, []string{"upstream-keepalive-requests"}},
	{"NginxProxyReadTimeout", secs(NginxProxyReadTimeout), srcNginxConfigMap, []string{"proxy-read-timeout"}},
	{"NginxProxyConnectTimeout", secs(NginxProxyConnectTimeout), srcNginxConfigMap, []string{"proxy-connect-timeout"}},
	{"NginxClientKeepaliveTimeout", secs(NginxClientKeepaliveTimeout), srcNginxConfigMap, nil},
	{"NginxWorkerShutdownTimeout", secs(NginxWorkerShutdownTimeout), srcNginxConfigMap, []string{"worker-shutdown-timeout"}},
	{"NginxSyncRateLimit", strconv.FormatFloat(NginxSyncRateLimit, 'f', -1, 64), srcNginxSync, []string{"--sync-rate-limit"}},
	{"NginxSyncInterval", secs(NginxSyncInterval), srcNginxSync, nil},
	{"NginxBackendsSyncInterval", secs(NginxBackendsSyncInterval), srcNginxLua, []string{"BACKENDS_SYNC_INTERVAL"}},
	{"NginxSyncLag", secs(NginxSyncLag), srcNginxLag, nil},
}
