package workload

import (
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
)

const nginxIngress = `---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
CLASS
spec:
  SPEC
  defaultBackend:
    service: {name: web, port: {number: 80}}
`

const nginxConfigMap = `---
apiVersion: v1
kind: ConfigMap
metadata:
  name: ingress-nginx-controller
  namespace: ingress-nginx
data:
  upstream-keepalive-timeout: "30"
  proxy-next-upstream-tries: "5"
`

func resolveNginx(t *testing.T, class, spec, extra string) (Route, error) {
	t.Helper()
	ing := strings.Replace(strings.Replace(nginxIngress, "CLASS\n", class, 1), "SPEC", spec, 1)
	w, err := resolveOne(t, deploymentYAML(2, "1", "0")+ing+extra)
	if len(w.Routes) != 1 {
		t.Fatalf("routes %+v", w.Routes)
	}
	return w.Routes[0], err
}

// An Ingress of class nginx is an nginx route with ingress-nginx's
// ConfigMap defaults, not an ALB route; annotations win over the
// ConfigMap, which wins over the defaults; the keep-alive has no annotation.
func TestNginxRoute(t *testing.T) {
	r, err := resolveNginx(t, "", "ingressClassName: nginx", "")
	n := r.Nginx
	if err != nil || r.LB != LBNginx || r.TargetType != "" || r.L7 || n == nil || n.ConfigMap != nil ||
		n.ProxyNextUpstream != defaults.NginxProxyNextUpstream || n.ProxyNextUpstreamTries != defaults.NginxProxyNextUpstreamTries ||
		n.UpstreamKeepaliveTimeout != defaults.NginxUpstreamKeepaliveTimeout || n.UpstreamKeepaliveConnections != defaults.NginxUpstreamKeepaliveConnections ||
		n.ProxyReadTimeout != defaults.NginxProxyReadTimeout || n.ProxyConnectTimeout != defaults.NginxProxyConnectTimeout || n.SyncLag != defaults.NginxSyncLag {
		t.Fatalf("default nginx route %+v %+v, err %v", r, n, err)
	}
	legacy := "  annotations:\n    kubernetes.io/ingress.class: nginx\n" +
		"    nginx.ingress.kubernetes.io/proxy-next-upstream: error timeout http_502\n" +
		"    nginx.ingress.kubernetes.io/proxy-read-timeout: \"120\"\n" +
		"    nginx.ingress.kubernetes.io/upstream-keepalive-timeout: \"999\"\n"
	r, err = resolveNginx(t, legacy, "", nginxConfigMap)
	n = r.Nginx
	if err != nil || r.LB != LBNginx || n.ConfigMap == nil || n.ProxyNextUpstream != "error timeout http_502" ||
		n.ProxyReadTimeout != 120*time.Second || n.UpstreamKeepaliveTimeout != 30*time.Second || n.ProxyNextUpstreamTries != 5 {
		t.Fatalf("annotated nginx route %+v, err %v", n, err)
	}
	if _, line := r.Locate(n.KeepaliveTimeoutAt); n.KeepaliveTimeoutAt.Object != n.ConfigMap || line == 0 {
		t.Errorf("keep-alive timeout located at %+v", n.KeepaliveTimeoutAt)
	}
	if o, line := r.Locate(n.ReadTimeoutAt); o != r.Front || line == o.Source.Line {
		t.Errorf("read timeout located at %v:%d", o.Source, line)
	}
	bad := "  annotations:\n    nginx.ingress.kubernetes.io/proxy-next-upstream-tries: three\n"
	if _, err := resolveNginx(t, bad, "ingressClassName: nginx", ""); err == nil || !strings.Contains(err.Error(), "proxy-next-upstream-tries") {
		t.Errorf("bad tries: want an error naming it, got %v", err)
	}
	if r, _ := resolveNginx(t, "", "ingressClassName: alb", ""); r.LB != "ALB" {
		t.Errorf("class alb: %+v", r)
	}
}
