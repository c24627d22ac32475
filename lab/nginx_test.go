package lab_test

import (
	"os"
	"testing"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/lab"
	"github.com/rollsafe/rollsafe/lab/nginx"
	"github.com/rollsafe/rollsafe/timeline"
)

// needNginx skips without nginx, except in CI (CI=true), where the
// topology must run.
func needNginx(t *testing.T) {
	t.Helper()
	if _, err := nginx.Find(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// nginx ingress, real nginx: without a preStop the app exits while nginx
// still routes to it for its sync lag. A GET in flight on the exiting pod
// is passed on to another pod (proxy_next_upstream error timeout), a POST
// already sent is not (nginx ≥ 1.9.13), so POSTs fail where GETs do not;
// nginx's access log counts the GETs it retried, the failures GET-only
// probes never see. The fix (preStop past the sync lag, graceful app) loses
// nothing over 5 rollouts and needs no retry.
func TestTopologyNginxIngress(t *testing.T) {
	needNginx(t)
	broken := playOn(t, "ingress-no-prestop", lab.TopologyNginxIngress, "", 3, topoScale)
	expectCauses(t, broken, []timeline.Cause{timeline.CauseIngressStaleEndpoint})
	n := broken.Nginx
	t.Logf("nginx: failed %v, retried and hidden %v, %d reloads", n.Failed, n.Retried, n.Reloads)
	if n.Failed["GET"] >= n.Failed["POST"] || n.Retried["GET"] == 0 {
		t.Errorf("want GET failures < POST failures and GETs retried: failed %v, retried %v", n.Failed, n.Retried)
	}
	if got := n.Failed["GET"] + n.Failed["POST"]; got != broken.Failed() {
		t.Errorf("nginx failed %d requests, the prober saw %d fail", got, broken.Failed())
	}
	fixed := playOn(t, "ingress-prestop", lab.TopologyNginxIngress, "", 5, topoScale)
	expectNoLoss(t, fixed)
	if r := fixed.Nginx.Retried; r["GET"]+r["POST"] != 0 {
		t.Errorf("the fix relied on nginx's retries: %v", r)
	}
}

// nginx-prestop-too-short's broken side: a preStop of 2 s, shorter than
// the ingress's 4.33 s sync lag, lets nginx send requests to the pod until
// it exits; with the app exiting at once the POSTs in flight fail. A
// graceful app (it stops accepting at SIGTERM) loses none: nginx passes the
// refused connects on, both methods, since nothing was sent — retries a
// GET-only probe never sees, and on AWS, where a gone pod's IP does not
// answer, each waits proxy_connect_timeout first. The kept side,
// ingress-prestop (7 s), is TestTopologyNginxIngress's.
func TestIngressPreStopShort(t *testing.T) {
	needNginx(t)
	short := playOn(t, "ingress-prestop-short", lab.TopologyNginxIngress, "", 3, topoScale)
	expectCauses(t, short, []timeline.Cause{timeline.CauseIngressStaleEndpoint})
	if n := short.Nginx; n.Failed["POST"] == 0 || n.Failed["GET"] >= n.Failed["POST"] {
		t.Errorf("want POSTs lost, and more than GETs: failed %v", n.Failed)
	}
	graceful := playOn(t, "ingress-prestop-short", lab.TopologyNginxIngress, "graceful", 3, topoScale)
	expectNoLoss(t, graceful)
	if r := graceful.Nginx.Retried; r["GET"]+r["POST"] == 0 {
		t.Errorf("a graceful app behind a short preStop: want refused connects passed on by nginx, got none: %v", r)
	}
}

// An Ingress of class nginx replays on nginx-ingress with its annotations
// and the controller's ConfigMap over ingress-nginx's defaults.
func TestReplayNginxIngress(t *testing.T) {
	s, err := lab.FromManifests("../check/testdata/cases/nginx-route-miss.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Nginx
	if s.Topology != lab.TopologyNginxIngress || h == nil || h.ProxyNextUpstreamTry != 2 ||
		h.KeepaliveTimeout != defaults.NginxUpstreamKeepaliveTimeout || h.ProxyNextUpstream != defaults.NginxProxyNextUpstream ||
		h.SyncLag() != defaults.NginxSyncLag || s.ReadinessGate {
		t.Fatalf("topology %q, hop %+v, gate %v", s.Topology, h, s.ReadinessGate)
	}
}
