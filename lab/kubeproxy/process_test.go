package kubeproxy

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/lab/kubelet/kubelettest"
)

func TestMain(m *testing.M) {
	kubelettest.Main() // the test binary re-executed as a pod process
	os.Exit(m.Run())
}

// startPodProcess runs kubelettest's server as a real process on
// 127.0.0.1 and returns it once it accepts connections.
func startPodProcess(t *testing.T, name string) (*exec.Cmd, netip.AddrPort) {
	t.Helper()
	port, err := kubelettest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	cmd := exec.Command(kubelettest.Command()[0])
	cmd.Env = append(os.Environ(), "POD_IP=127.0.0.1", "PORT="+strconv.Itoa(port), "POD_NAME="+name)
	for _, e := range (kubelettest.Server{}).Env() {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for { // until it listens; the test's own timeout bounds the wait
		c, err := net.Dial("tcp", addr.String())
		if err == nil {
			c.Close()
			return cmd, addr
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A pod process killed with SIGKILL takes its end of the pinned connection
// with it: the kernel closes its sockets, and the load balancer's
// connection through the node ends.
func TestKilledPodProcessEndsPinnedConnection(t *testing.T) {
	rec := newRecorder()
	cmd, addr := startPodProcess(t, "proc")
	n := startNode(t, rec, "n1", nil)
	rec.apply(t, n, Endpoint{Addr: addr, Node: "n1", Ready: true, Serving: true})
	c := dial(t, n)
	if got := strings.TrimSpace(mustGet(t, c)); got != "proc" {
		t.Fatalf("first request answered %q, want proc", got)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() // the process is gone, and with it its sockets
	if _, err := c.get("/"); !isGone(err) {
		t.Errorf("request on the pinned connection after SIGKILL: %v, want EOF or reset", err)
	}
}
