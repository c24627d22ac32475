package workload

import (
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
)

const clbService = `---
apiVersion: v1
kind: Service
metadata:
  name: web
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-backend-protocol: http
ANNOTATIONS
spec:
  type: LoadBalancer
POLICY
  selector: {app: web}
  ports:
  - port: 80
`

func resolveCLB(t *testing.T, annotations, policy string) (Route, error) {
	t.Helper()
	svc := strings.Replace(strings.Replace(clbService, "ANNOTATIONS\n", annotations, 1), "POLICY\n", policy, 1)
	w, err := resolveOne(t, deploymentYAML(2, "1", "0")+svc)
	if len(w.Routes) != 1 {
		t.Fatalf("routes %+v", w.Routes)
	}
	return w.Routes[0], err
}

// The in-tree Classic ELB as the provider makes it: draining off unless
// enabled, the timeouts in whole seconds, its health check defaults.
func TestClassicELBRoute(t *testing.T) {
	r, err := resolveCLB(t, "", "")
	hc := r.HealthCheck
	if err != nil || r.LB != "CLB" || r.TargetType != "instance" || !r.L7 || r.DeregistrationDelay != 0 || r.IdleTimeout != defaults.CLBIdleTimeout ||
		hc.Protocol != "TCP" || hc.Interval != defaults.CLBHealthCheckInterval || hc.Timeout != defaults.CLBHealthCheckTimeout ||
		hc.HealthyThreshold != defaults.CLBHealthyThreshold || hc.UnhealthyThreshold != defaults.CLBUnhealthyThreshold {
		t.Errorf("default route %+v, err %v", r, err)
	}
	on := "    " + defaults.CLBDrainingEnabledAnnotation + ": \"true\"\n"
	if r, err := resolveCLB(t, on, ""); err != nil || r.DeregistrationDelay != defaults.CLBConnectionDrainingTimeout || r.DelaySet {
		t.Errorf("draining on, no timeout: %+v, err %v", r, err)
	}
	timeout := on + "    " + defaults.CLBDrainingTimeoutAnnotation + ": \"49\"\n    " + defaults.CLBIdleTimeoutAnnotation + ": \"120\"\n"
	if r, err := resolveCLB(t, timeout, ""); err != nil || r.DeregistrationDelay != 49*time.Second || !r.DelaySet || r.IdleTimeout != 120*time.Second {
		t.Errorf("draining 49: %+v, err %v", r, err)
	}
	if r, _ := resolveCLB(t, "", "  externalTrafficPolicy: Local\n"); r.HealthCheck.Protocol != "HTTP" || r.HealthCheck.Path != "/healthz" {
		t.Errorf("Local: health check %+v", r.HealthCheck)
	}
	for _, bad := range []string{on + "    " + defaults.CLBDrainingTimeoutAnnotation + ": 49s\n", "    " + defaults.CLBDrainingEnabledAnnotation + ": yes\n"} {
		_, err := resolveCLB(t, bad, "")
		if err == nil || !strings.HasPrefix(err.Error(), "-:") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: want one error at -:line, got %v", bad, err)
		}
	}
}

// NLB ip targets are judged at the NLB's P unless --propagation moved it.
func TestForWorkloadNLBPropagation(t *testing.T) {
	w := &Workload{Routes: []Route{{LB: "NLB", TargetType: "ip"}}}
	o := DefaultOptions()
	if got := o.ForWorkload(w).Propagation; got != defaults.NLBPropagation {
		t.Errorf("default P for NLB ip: %v", got)
	}
	o.Propagation = 30 * time.Second
	if got := o.ForWorkload(w).Propagation; got != 30*time.Second {
		t.Errorf("--propagation 30s: %v", got)
	}
	w.Routes[0].TargetType = "instance"
	if got := DefaultOptions().ForWorkload(w).Propagation; got != defaults.Propagation {
		t.Errorf("NLB instance: %v", got)
	}
}
