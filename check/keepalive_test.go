package check_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/check"
	"github.com/rollsafe/rollsafe/workload"
)

// keepAliveCase is a Deployment behind a Service of type LoadBalancer
// (instance targets): serviceAnnotations pick the load balancer, drain is
// the app's DRAIN_DELAY env ("" for none) and annotation its
// rollsafe.dev/drain-delay ("" for none).
func keepAliveCase(t *testing.T, serviceAnnotations, drain, annotation string) *check.Result {
	t.Helper()
	env, ann := "", ""
	if drain != "" {
		env = "\n        env:\n        - name: DRAIN_DELAY\n          value: \"" + drain + "\""
	}
	if annotation != "" {
		ann = "\n  annotations:\n    rollsafe.dev/drain-delay: \"" + annotation + "\""
	}
	doc := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: api` + ann + `
spec:
  replicas: 3
  selector:
    matchLabels:
      app: api
  template:
    metadata:
      labels:
        app: api
    spec:
      terminationGracePeriodSeconds: 300
      containers:
      - name: api
        image: example.com/api:1
        ports:
        - containerPort: 1325` + env + `
        lifecycle:
          preStop:
            sleep:
              seconds: 20
---
apiVersion: v1
kind: Service
metadata:
  name: api
  annotations:
` + serviceAnnotations + `
spec:
  selector:
    app: api
  ports:
  - port: 80
    targetPort: 1325
  type: LoadBalancer
`
	path := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return checkFiles(t, workload.DefaultOptions(), path)
}

const (
	clbAnnotations = "    service.beta.kubernetes.io/aws-load-balancer-backend-protocol: http"
	nlbAnnotations = "    service.beta.kubernetes.io/aws-load-balancer-type: nlb"
)

// kube-proxy-keepalive is quiet when the app's drain outlasts the time a
// pinned connection can sit idle (the Classic ELB's 60 s idle timeout, the
// NLB's 350 s TCP idle timeout), and otherwise its fix sets DRAIN_DELAY
// 5 s past that, with the grace it needs (preStop 20 + drain + the longest
// request, 30 by default, + 1).
func TestKubeProxyKeepAliveDrain(t *testing.T) {
	for _, c := range []struct {
		name, svc, env, annotation string
		wantFix                    string // "" for no finding
		minGrace                   int    // 0: the fix leaves the grace alone
	}{
		{"clb no drain", clbAnnotations, "", "", `value: "65"`, 0},
		{"clb drain at the idle timeout", clbAnnotations, "60", "", `value: "65"`, 0},
		{"clb env drain past it", clbAnnotations, "65s", "", "", 0},
		{"clb annotated drain past it", clbAnnotations, "", "61", "", 0},
		// 300 s covers 20 + 65 + 30 but not 20 + 355 + 30 + 1.
		{"nlb drain past the clb's window only", nlbAnnotations, "65", "", `value: "355"`, 406},
		{"nlb drain past its tcp idle timeout", nlbAnnotations, "351", "", "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := keepAliveCase(t, c.svc, c.env, c.annotation)
			var fix string
			n := 0
			for _, f := range res.Findings {
				if f.Rule == "kube-proxy-keepalive" {
					fix, n = f.Fix, n+1
				}
			}
			if c.wantFix == "" {
				if n != 0 {
					t.Fatalf("want no kube-proxy-keepalive, got %d: %s", n, fix)
				}
				return
			}
			if n != 1 || !strings.Contains(fix, "- name: DRAIN_DELAY\n") || !strings.Contains(fix, c.wantFix) {
				t.Fatalf("want one kube-proxy-keepalive setting DRAIN_DELAY %s, got %d: %s", c.wantFix, n, fix)
			}
			_, g, found := strings.Cut(fix, "terminationGracePeriodSeconds: ")
			grace, _ := strconv.Atoi(strings.TrimSpace(g))
			if found != (c.minGrace > 0) || grace < c.minGrace {
				t.Errorf("want the fix's grace ≥ %d (0: none), got %q", c.minGrace, g)
			}
		})
	}
}
