package check_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/check"
	"github.com/rollsafe/rollsafe/manifest"
	"github.com/rollsafe/rollsafe/workload"
)

// corpus renders n objects: per app a Deployment, Service, Ingress and PDB,
// spread over namespaces of 25 apps, each namespace with its Namespace object.
func corpus(n int) []byte {
	var b strings.Builder
	for i := 0; i*4 < n; i++ {
		ns := fmt.Sprintf("team-%d", i/25)
		if i%25 == 0 {
			fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    elbv2.k8s.aws/pod-readiness-gate-inject: enabled\n", ns)
		}
		fmt.Fprintf(&b, `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app-%[1]d, namespace: %[2]s}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: app-%[1]d}}
  template:
    metadata: {labels: {app: app-%[1]d}}
    spec:
      terminationGracePeriodSeconds: %[4]d
      containers:
      - name: app
        image: example.com/app:1
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /ready, port: http}}
        lifecycle: {preStop: {exec: {command: ["sh", "-c", "sleep %[5]d"]}}}
---
apiVersion: v1
kind: Service
metadata: {name: app-%[1]d, namespace: %[2]s}
spec:
  selector: {app: app-%[1]d}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: app-%[1]d
  namespace: %[2]s
  annotations:
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/group.name: %[2]s
    alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=%[6]d
spec:
  ingressClassName: alb
  defaultBackend: {service: {name: app-%[1]d, port: {number: 80}}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: app-%[1]d, namespace: %[2]s}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app: app-%[1]d}}
`, i, ns, 1+i%4, 20+i%60, 5+i%50, 10+i%40)
	}
	return []byte(b.String())
}

// BenchmarkCheck loads and checks n objects end to end (parse, index,
// rules). Target: 10,000 objects in under 1 s, linear in n — compare the
// ns/op of the 1k and 10k runs.
func BenchmarkCheck(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		data := corpus(n)
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				objs, err := manifest.Parse("bench.yaml", data)
				if err != nil {
					b.Fatal(err)
				}
				res, err := check.Check(objs, workload.DefaultOptions())
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Findings) == 0 {
					b.Fatal("the corpus is built to produce findings")
				}
			}
		})
	}
}

func TestBenchCorpusIsValid(t *testing.T) {
	objs, err := manifest.Parse("bench.yaml", corpus(1000))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) < 1000 || len(objs) > 1050 {
		t.Fatalf("%d objects", len(objs))
	}
}
