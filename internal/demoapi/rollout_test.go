package demoapi_test

// The proof for graceful: the real demo API, as child processes,
// behind a real reverse proxy on loopback, under ≥ 500 req/s of keep-alive
// traffic. One replica is taken out the way EKS takes a pod out: the proxy
// keeps routing new requests to it for a propagation delay while SIGTERM
// arrives at the same moment. Graceful shutdown must lose nothing; the
// seeds' "exit at once" must lose requests.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var demoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "demoapi-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	demoBin = filepath.Join(dir, "demo-api")
	out, err := exec.Command("go", "build", "-o", demoBin, "github.com/rollsafe/rollsafe/cmd/demo-api").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build demo-api: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// replica is one demo-api child process on its own loopback address.
type replica struct {
	name string
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid after done
}

func startReplica(t *testing.T, name string, args ...string) *replica {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // reserve a free port
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(demoBin, append([]string{"--listen", addr}, args...)...)
	cmd.Env = append(os.Environ(), "POD_NAME="+name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() { r.err = cmd.Wait(); close(r.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-r.done })
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return r
			}
		}
		if i > 200 {
			t.Fatalf("replica %s never became ready: %v", name, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// proxy round-robins over its routable backends. A request with header
// X-Pin: name goes to that backend whatever its state (for /slow).
type proxy struct {
	mu       sync.Mutex
	backends []*replica
	next     int
	rps      map[string]*httputil.ReverseProxy
}

func newProxy(rs ...*replica) *proxy {
	p := &proxy{backends: rs, rps: map[string]*httputil.ReverseProxy{}}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 60 * time.Second}
	for _, r := range rs {
		u, _ := url.Parse("http://" + r.addr)
		rp := httputil.NewSingleHostReverseProxy(u)
		rp.Transport = tr
		rp.ErrorLog = nil
		rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
		p.rps[r.name] = rp
	}
	return p
}

func (p *proxy) remove(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var keep []*replica
	for _, r := range p.backends {
		if r.name != name {
			keep = append(keep, r)
		}
	}
	p.backends = keep
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.Header.Get("X-Pin")
	if name == "" {
		p.mu.Lock()
		name = p.backends[p.next%len(p.backends)].name
		p.next++
		p.mu.Unlock()
	}
	p.rps[name].ServeHTTP(w, r)
}

type tally struct {
	ok, failed atomic.Int64
	sent       atomic.Int64
}

// load sends rate req/s through 8 keep-alive clients until ctx ends.
func load(ctx context.Context, base string, rate int, t *tally) *sync.WaitGroup {
	work := make(chan struct{}, rate)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				resp, err := client.Get(base + "/")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err == nil && resp.StatusCode == 200 {
					t.ok.Add(1)
				} else {
					t.failed.Add(1)
				}
			}
		}()
	}
	// Pace by catching up with the clock, not with a Ticker: a Ticker drops
	// ticks on a busy machine and the rate would silently sink.
	go func() {
		defer close(work)
		start := time.Now()
		for ctx.Err() == nil {
			due := int64(time.Since(start).Seconds() * float64(rate))
			for t.sent.Load() < due {
				t.sent.Add(1)
				select {
				case work <- struct{}{}:
				default: // every worker busy and the queue full: a failure, never a silent skip
					t.failed.Add(1)
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return &wg
}

// rollOne takes replica a out under load and returns the tally and the
// status codes of /slow requests pinned to a that were in flight at SIGTERM.
func rollOne(t *testing.T, aArgs ...string) (*tally, []int, error) {
	a := startReplica(t, "a", aArgs...)
	b := startReplica(t, "b")
	p := newProxy(a, b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	const rate = 600
	const propagation = 400 * time.Millisecond
	var tl tally
	ctx, cancel := context.WithCancel(context.Background())
	wg := load(ctx, base, rate, &tl)
	time.Sleep(700 * time.Millisecond)

	slowCodes := make([]int, 3)
	var slowWG sync.WaitGroup
	for i := range slowCodes {
		slowWG.Add(1)
		go func() {
			defer slowWG.Done()
			req, _ := http.NewRequest("GET", base+"/slow?ms=2000", nil)
			req.Header.Set("X-Pin", "a")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return // code stays 0
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			slowCodes[i] = resp.StatusCode
		}()
	}
	time.Sleep(200 * time.Millisecond) // the slow requests are in flight

	// Deregistration and SIGTERM start together, as on EKS; the proxy learns
	// of the deregistration only after the propagation delay.
	a.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(propagation)
	p.remove("a")
	time.Sleep(1500 * time.Millisecond)
	cancel()
	wg.Wait()
	slowWG.Wait()
	select {
	case <-a.done:
		err = a.err
	case <-time.After(15 * time.Second):
		err = fmt.Errorf("replica a did not exit")
	}
	return &tl, slowCodes, err
}

func TestGracefulShutdownLosesNothingBehindAProxy(t *testing.T) {
	tl, slow, exitErr := rollOne(t, "--shutdown", "graceful", "--drain-delay", "1s", "--shutdown-timeout", "5s")
	t.Logf("sent %d ok %d failed %d; /slow codes %v", tl.sent.Load(), tl.ok.Load(), tl.failed.Load(), slow)
	if tl.ok.Load() < 1000 {
		t.Fatalf("only %d requests succeeded: the load did not run", tl.ok.Load())
	}
	if n := tl.failed.Load(); n != 0 {
		t.Errorf("%d requests failed during a graceful shutdown; want 0", n)
	}
	for i, c := range slow {
		if c != 200 {
			t.Errorf("/slow request %d in flight at SIGTERM got %d; want 200", i, c)
		}
	}
	if exitErr != nil {
		t.Errorf("graceful replica exit: %v; want exit 0", exitErr)
	}
}

func TestImmediateShutdownLosesRequests(t *testing.T) {
	tl, slow, _ := rollOne(t, "--shutdown", "immediate")
	t.Logf("sent %d ok %d failed %d; /slow codes %v", tl.sent.Load(), tl.ok.Load(), tl.failed.Load(), slow)
	if tl.failed.Load() == 0 {
		t.Error("an app that exits at once on SIGTERM lost no request: the test cannot tell good from bad")
	}
	for i, c := range slow {
		if c == 200 {
			t.Errorf("/slow request %d survived an immediate exit", i)
		}
	}
}

func TestSecondSignalExitsAtOnce(t *testing.T) {
	r := startReplica(t, "a", "--drain-delay", "10m")
	r.cmd.Process.Signal(syscall.SIGTERM)
	// Wait until readiness fails, so the first signal has been handled.
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + r.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 503 {
				break
			}
		}
		if i > 400 {
			t.Fatal("readiness never failed after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
		err := r.err
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("exit after second signal = %v; want exit status 1", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a second SIGTERM did not end a 10-minute drain")
	}
}

func TestBadInputOneLineExit2(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  string
		want string
	}{
		{args: []string{"--drain-delay", "soon"}, want: "demo-api: invalid value \"soon\" for flag -drain-delay: not a duration (want e.g. 15s, 1m30s or 15)\n"},
		{env: "DRAIN_DELAY=abc", want: "demo-api: DRAIN_DELAY=\"abc\": not a duration (want e.g. 15s, 1m30s or 15)\n"},
		{args: []string{"--shutdown", "never"}, want: "demo-api: -shutdown \"never\": want graceful or immediate\n"},
	} {
		cmd := exec.Command(demoBin, c.args...)
		cmd.Env = append(os.Environ(), c.env)
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("%v %s: err %v, want exit 2", c.args, c.env, err)
		}
		if string(out) != c.want {
			t.Errorf("%v %s: output %q, want %q", c.args, c.env, out, c.want)
		}
	}
}
