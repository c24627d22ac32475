package lab

import (
	"net/netip"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/rollsafe/rollsafe/lab/kubeproxy"
)

// A pod's API address maps back to where it listens, and nothing outside
// the lab's pod network maps at all.
func TestPodNetworkRoundTrip(t *testing.T) {
	pn := podNetwork{b: 42}
	for i := 1; i <= 3; i++ {
		ip := pn.first(i)
		api := pn.inAPI(ip)
		if api.IsLoopback() || !api.Is4() {
			t.Fatalf("agent %d: %s shows as %s, which EndpointSlices refuse", i, ip, api)
		}
		if back, ok := pn.local(api); !ok || back != ip {
			t.Fatalf("agent %d: %s -> %s -> %s, %v", i, ip, api, back, ok)
		}
	}
	if _, ok := pn.local(netip.MustParseAddr("10.0.0.1")); ok {
		t.Fatal("10.0.0.1 mapped into the pod network")
	}
}

// The conditions as kube-proxy reads them: a nil ready or serving is true,
// a nil terminating false; the node is the lab node's name.
func TestSliceEndpointConditions(t *testing.T) {
	pn := podNetwork{b: 7}
	f := &sliceFeed{pn: pn, node: func(n string) string { return "lab-" + n }}
	no, yes := false, true
	node := "n1"
	cases := []struct {
		c    discoveryv1.EndpointConditions
		want kubeproxy.Endpoint
	}{
		{discoveryv1.EndpointConditions{}, kubeproxy.Endpoint{Ready: true, Serving: true}},
		{discoveryv1.EndpointConditions{Ready: &no, Serving: &yes, Terminating: &yes}, kubeproxy.Endpoint{Serving: true, Terminating: true}},
		{discoveryv1.EndpointConditions{Ready: &no, Serving: &no, Terminating: &no}, kubeproxy.Endpoint{}},
	}
	for _, c := range cases {
		got, ok := f.endpoint(discoveryv1.Endpoint{Addresses: []string{"198.18.1.5"}, Conditions: c.c, NodeName: &node}, 1325)
		c.want.Addr = netip.MustParseAddrPort("127.7.1.5:1325")
		c.want.Node = "lab-n1"
		if !ok || got != c.want {
			t.Errorf("%+v: got %+v, %v; want %+v", c.c, got, ok, c.want)
		}
	}
}
