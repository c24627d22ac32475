package nodeagent

import (
	"context"
	"io"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pods/log goes through the API server to the agent's kubelet endpoint:
// following the log of a running pod returns its stdout and stderr until
// the process exits, and the log stays readable while the pod object does.
func TestPodLogsThroughTheAPI(t *testing.T) {
	l := newLab(t, netip.MustParseAddr("127.0.19.1"))
	ctx := context.Background()
	// A second node, running pods' own commands (newLab's runs the test server).
	own, err := Start(ctx, Options{Config: l.cp.Config(), NodeName: l.node + "-own", Port: l.port, FirstIP: netip.MustParseAddr("127.0.20.1")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(own.Stop)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "talk"}, Spec: corev1.PodSpec{
		NodeSelector:  map[string]string{corev1.LabelHostname: own.NodeName()},
		RestartPolicy: corev1.RestartPolicyNever,
		Containers: []corev1.Container{{Name: "main", Image: "sh", Command: []string{"sh", "-c",
			"echo one; sleep 0.5; echo two >&2; sleep 0.5; echo three"}}},
	}}
	if _, err := l.cs.CoreV1().Pods(l.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	l.waitPod("talk", "running", func(p *corev1.Pod) bool { return p.Status.Phase != corev1.PodPending })
	for _, follow := range []bool{true, false} { // the second read is after the exit
		s, err := l.cs.CoreV1().Pods(l.ns).GetLogs("talk", &corev1.PodLogOptions{Follow: follow}).Stream(ctx)
		if err != nil {
			t.Fatalf("follow %v: %v", follow, err)
		}
		b, err := io.ReadAll(s)
		s.Close()
		if err != nil || string(b) != "one\ntwo\nthree\n" {
			t.Fatalf("follow %v: log %q (%v), want one two three", follow, b, err)
		}
	}
	if p := l.waitPod("talk", "succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded }); p == nil {
		t.Fatal("no pod")
	}
}
