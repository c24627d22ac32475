package graceful

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

type served struct {
	gs     *Server
	url    string
	cancel context.CancelFunc
	errc   chan error
}

func quiet(o Options) Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}

// start serves h (and /readyz) on a loopback port under a context the test
// cancels, and returns once /readyz answers 200.
func start(t *testing.T, opts Options, h http.Handler) *served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{}
	gs := New(srv, quiet(opts))
	srv.Handler = withReady(gs, h)
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &served{gs: gs, url: "http://" + ln.Addr().String(), errc: make(chan error, 1),
		cancel: func() { cancel(errors.New("test cancelled")) }}
	go func() { s.errc <- gs.Serve(ctx, ln) }()
	t.Cleanup(func() { s.cancel(); srv.Close() })
	waitReady(t, s.url)
	return s
}

func withReady(gs *Server, h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/readyz", gs.ReadyHandler())
	if h != nil {
		mux.Handle("/", h)
	}
	return mux
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	for i := 0; ; i++ {
		if resp, err := get(http.DefaultClient, url+"/readyz"); err == nil && resp.StatusCode == 200 {
			return
		}
		if i > 500 {
			t.Fatal("server never became ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// get returns the response with its body read and closed.
func get(c *http.Client, url string) (*http.Response, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func waitDraining(t *testing.T, gs *Server) {
	t.Helper()
	for i := 0; i < 500 && !gs.Draining(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !gs.Draining() {
		t.Fatal("server never began draining")
	}
}

// blocker is a handler whose requests wait until released.
type blocker struct {
	started chan struct{}
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan struct{}, 10), release: make(chan struct{})}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/block" {
		io.WriteString(w, "hi")
		return
	}
	b.started <- struct{}{}
	select {
	case <-b.release:
		io.WriteString(w, "done")
	case <-r.Context().Done():
	}
}

// TestCancelRunsTheDrainSequence: cancelling Serve's context fails
// readiness, turns keep-alive off (every answer says Connection: close)
// while still serving through the drain delay, then shuts down: the
// listener closes and the request in flight finishes before Serve returns.
func TestCancelRunsTheDrainSequence(t *testing.T) {
	b := newBlocker()
	s := start(t, Options{DrainDelay: 300 * time.Millisecond, ShutdownTimeout: time.Minute}, b)
	keepAlive := &http.Client{Transport: &http.Transport{}}
	if resp, err := get(keepAlive, s.url+"/"); err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("before cancel: %v, %v; want 200 with keep-alive", resp, err)
	}
	inFlight := make(chan *http.Response, 1)
	go func() {
		resp, err := get(&http.Client{Transport: &http.Transport{}}, s.url+"/block")
		if err != nil {
			t.Errorf("in-flight request: %v", err)
		}
		inFlight <- resp
	}()
	<-b.started

	s.cancel()
	waitDraining(t, s.gs)
	if resp, err := get(keepAlive, s.url+"/readyz"); err != nil || resp.StatusCode != 503 {
		t.Fatalf("readyz while draining = %v, %v; want 503", resp, err)
	}
	if resp, err := get(keepAlive, s.url+"/"); err != nil || resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("request during the drain delay = %v, %v; want 200 with Connection: close", resp, err)
	}

	waitRefused(t, s.url)
	select {
	case err := <-s.errc:
		t.Fatalf("Serve returned %v with a request still in flight", err)
	default:
	}
	close(b.release)
	if resp := <-inFlight; resp == nil || resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("request in flight at shutdown = %v; want 200 with Connection: close", resp)
	}
	if err := <-s.errc; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}

// waitRefused returns once a new connection is refused: Shutdown has
// closed the listener.
func waitRefused(t *testing.T, url string) {
	t.Helper()
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 3000; i++ {
		if _, err := get(fresh, url+"/"); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("listener still accepting after the drain delay")
}

func TestServeReturnsNoSoonerThanTheDrainDelay(t *testing.T) {
	const drain = 500 * time.Millisecond
	s := start(t, Options{DrainDelay: drain}, nil)
	cancelled := time.Now()
	s.cancel()
	if err := <-s.errc; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	// A lower bound, not a speed check: Serve must not return before the
	// drain delay has passed.
	if el := time.Since(cancelled); el < drain {
		t.Fatalf("Serve returned %v after cancel, before the %v drain delay", el, drain)
	}
}

func TestReadinessFailsBeforeServing(t *testing.T) {
	gs := New(&http.Server{}, Options{})
	rec := &recorder{h: http.Header{}}
	gs.ReadyHandler().ServeHTTP(rec, nil)
	if rec.code != 503 {
		t.Fatalf("readyz before Serve = %d, want 503", rec.code)
	}
}

type recorder struct {
	h    http.Header
	code int
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(c int)           { r.code = c }

func TestShutdownDeadlineCutsInFlight(t *testing.T) {
	b := newBlocker()
	defer close(b.release)
	s := start(t, Options{DrainDelay: 0, ShutdownTimeout: 200 * time.Millisecond}, b)
	clientErr := make(chan error, 1)
	go func() { _, err := get(http.DefaultClient, s.url+"/block"); clientErr <- err }()
	<-b.started
	if n := s.gs.InFlight(); n != 1 {
		t.Fatalf("InFlight = %d, want 1", n)
	}
	s.cancel()
	if err := <-s.errc; !errors.Is(err, ErrShutdownTimeout) {
		t.Fatalf("Serve = %v, want ErrShutdownTimeout", err)
	}
	if err := <-clientErr; err == nil {
		t.Fatal("the request still in flight at the deadline got an answer; want its connection closed")
	}
}

func TestServerErrorReturnsAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // Serve's Accept fails at once
	gs := New(&http.Server{}, quiet(Options{DrainDelay: time.Hour}))
	if err := gs.Serve(context.Background(), ln); err == nil || gs.Draining() {
		t.Fatalf("Serve on a closed listener = %v (draining %v); want its error, no drain", err, gs.Draining())
	}
}
