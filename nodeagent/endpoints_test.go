package nodeagent

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// benchRange is RFC 2544's benchmarking range, made local on lo for the
// test: the EndpointSlice API refuses loopback addresses, so pods that
// must appear in EndpointSlices need addresses that are local but not
// 127.0.0.0/8. Packets to it never leave the host (a local route on lo).
const benchRange = "198.18.0.1/16"

// localRange makes 198.18.0.0/16 local to this host for the test, and
// removes it again if it was not there before.
func localRange(t *testing.T) {
	t.Helper()
	if checkLocal(netip.MustParseAddr("198.18.0.1")) == nil {
		return
	}
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skip("no ip command (Debian iproute2) to add %s to lo: %v", benchRange, err)
	}
	if out, err := exec.Command("ip", "addr", "add", benchRange, "dev", "lo").CombinedOutput(); err != nil {
		skip("cannot add %s to lo (needs CAP_NET_ADMIN): %v: %s", benchRange, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "addr", "del", benchRange, "dev", "lo").Run() })
}

// With pod IPs the API accepts in EndpointSlices, the real EndpointSlice
// controller lists the agent's pods, ready, at the addresses where their
// processes answer.
func TestEndpointSlicesListPodIPs(t *testing.T) {
	localRange(t)
	l := newLab(t, netip.MustParseAddr("198.18.12.1"))
	ctx := context.Background()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"},
		Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(int32(l.port))}},
	}}
	if _, err := l.cs.CoreV1().Services(l.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	l.deployment("web", 2)
	l.waitRolledOut("web")
	pods, err := l.pods(ctx, "app=web")
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, p := range pods {
		if !netip.MustParsePrefix("198.18.0.0/16").Contains(netip.MustParseAddr(p.Status.PodIP)) {
			t.Fatalf("pod %s: IP %s outside 198.18.0.0/16", p.Name, p.Status.PodIP)
		}
		if got := get(t, "http://"+net.JoinHostPort(p.Status.PodIP, itoa(l.port))+"/"); got != p.Name {
			t.Fatalf("pod %s at %s answered %q", p.Name, p.Status.PodIP, got)
		}
		ips = append(ips, p.Status.PodIP)
	}
	slices.Sort(ips)
	var ready []string
	l.waitFor("EndpointSlices listing both pods as ready", func(ctx context.Context) (bool, error) {
		list, err := l.cs.DiscoveryV1().EndpointSlices(l.ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return false, err
		}
		ready = nil
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready && e.NodeName != nil && *e.NodeName == l.node {
					ready = append(ready, e.Addresses...)
				}
			}
		}
		slices.Sort(ready)
		return slices.Equal(ready, ips), nil
	})
	if w := l.sink.warnings(); len(w) > 0 {
		t.Fatalf("agent warnings: %v", w)
	}
}
