package graceful

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The tests use SIGUSR1/SIGUSR2 as the shutdown signal so that a real signal
// sent to the test process reaches only the server under test.

type served struct {
	gs   *Server
	url  string
	errc chan error
}

func start(t *testing.T, opts Options, h http.Handler) *served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := &http.Server{}
	gs := New(srv, opts)
	mux := http.NewServeMux()
	mux.Handle("/readyz", gs.ReadyHandler())
	if h != nil {
		mux.Handle("/", h)
	}
	srv.Handler = mux
	s := &served{gs: gs, url: "http://" + ln.Addr().String(), errc: make(chan error, 1)}
	go func() { s.errc <- gs.Serve(context.Background(), ln) }()
	t.Cleanup(func() { srv.Close() })
	// Serve subscribes to the signals before it reports ready: wait for that,
	// or a signal sent too early would hit the default handler.
	for i := 0; ; i++ {
		if code, err := get(s.url + "/readyz"); err == nil && code == 200 {
			return s
		}
		if i > 500 {
			t.Fatal("server never became ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func kill(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
}

func waitDraining(t *testing.T, gs *Server) {
	t.Helper()
	for i := 0; i < 500 && !gs.Draining(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !gs.Draining() {
		t.Fatal("server never began draining after the signal")
	}
}

func TestReadinessFlipsAtSignalAndServingContinuesThroughDrain(t *testing.T) {
	const drain = 800 * time.Millisecond
	s := start(t, Options{DrainDelay: drain, Signals: []os.Signal{syscall.SIGUSR1}},
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hi") }))

	if code, err := get(s.url + "/readyz"); err != nil || code != 200 {
		t.Fatalf("readyz before signal = %d, %v; want 200", code, err)
	}
	sent := time.Now()
	kill(t, syscall.SIGUSR1)
	waitDraining(t, s.gs)
	if code, err := get(s.url + "/readyz"); err != nil || code != 503 {
		t.Fatalf("readyz after signal = %d, %v; want 503", code, err)
	}
	// Within the drain delay, ordinary requests are still served.
	if code, err := get(s.url + "/"); err != nil || code != 200 {
		t.Fatalf("request during drain = %d, %v; want 200", code, err)
	}
	if err := <-s.errc; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	// A lower bound, not a speed check: Serve must not return before the
	// drain delay has passed.
	if el := time.Since(sent); el < drain {
		t.Fatalf("Serve returned %v after the signal, before the %v drain delay", el, drain)
	}
	if _, err := get(s.url + "/"); err == nil {
		t.Fatal("server still accepts connections after shutdown")
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

func TestSecondSignalForcesExit(t *testing.T) {
	forced := make(chan struct{})
	var once atomic.Bool
	s := start(t, Options{
		DrainDelay: time.Hour, // only a second signal can end this
		Signals:    []os.Signal{syscall.SIGUSR2},
		ForceExit: func() {
			if once.CompareAndSwap(false, true) {
				close(forced)
			}
		},
	}, nil)
	kill(t, syscall.SIGUSR2)
	waitDraining(t, s.gs)
	kill(t, syscall.SIGUSR2)
	select {
	case <-forced:
	case <-time.After(30 * time.Second):
		t.Fatal("second signal did not call ForceExit")
	}
}

func TestShutdownDeadlineCutsInFlight(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	s := start(t, Options{DrainDelay: 0, ShutdownTimeout: 200 * time.Millisecond, Signals: []os.Signal{syscall.SIGUSR1}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(started)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
	clientErr := make(chan error, 1)
	go func() { _, err := get(s.url + "/block"); clientErr <- err }()
	<-started
	if n := s.gs.InFlight(); n != 1 {
		t.Fatalf("InFlight = %d, want 1", n)
	}
	kill(t, syscall.SIGUSR1)
	if err := <-s.errc; !errors.Is(err, ErrShutdownTimeout) {
		t.Fatalf("Serve = %v, want ErrShutdownTimeout", err)
	}
	if err := <-clientErr; err == nil {
		t.Fatal("the request still in flight at the deadline got an answer; want its connection closed")
	}
}

func TestContextCancelDrains(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := New(&http.Server{Handler: http.NotFoundHandler()}, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(ctx, ln) }()
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Serve after cancel = %v", err)
	}
	if !gs.Draining() {
		t.Fatal("not draining after cancel")
	}
}
