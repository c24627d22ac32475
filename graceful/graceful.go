// Package graceful shuts a Go HTTP server down without dropping a request
// behind a load balancer.
//
// Behind an ALB, a pod that exits as soon as it gets SIGTERM still receives
// new requests for a few seconds: the load balancer learns of the
// deregistration late, and its nodes learn it later still. The usual fix is
// a preStop "sleep" — which needs a shell that distroless images lack.
// graceful does the wait inside the app instead. When Serve's context is
// done:
//
//  1. the readiness handler starts answering 503, and every response
//     carries "Connection: close" so keep-alive connections are shed;
//  2. the server keeps serving normally for DrainDelay, so requests the load
//     balancer still sends are answered;
//  3. http.Server.Shutdown closes the listener and idle connections and waits
//     up to ShutdownTimeout for in-flight requests;
//  4. Serve returns nil, and main exits 0.
//
// Serve leaves signals to its caller. NotifyContext is the signal layer for
// a main (SIGTERM/SIGINT cancel the context; a second signal calls
// ForceExit, default os.Exit(1)), and ListenAndServe uses it, so
//
//	opts, err := graceful.FromEnv(graceful.DefaultOptions()) // DRAIN_DELAY, ...
//	gs := graceful.New(srv, opts)
//	err = gs.ListenAndServe(context.Background())
//
// drains on SIGTERM with the settings from the pod's env.
//
// With Echo, pass e.Server after setting its handler:
//
//	e.Server.Handler = e
//	srv := graceful.New(e.Server, opts)
//	e.GET("/readyz", echo.WrapHandler(srv.ReadyHandler()))
//	err := srv.ListenAndServe(ctx)
package graceful

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// ErrShutdownTimeout is returned by Serve when in-flight requests were still
// running at the shutdown deadline and their connections had to be closed.
var ErrShutdownTimeout = errors.New("graceful: shutdown deadline passed with requests in flight")

// Server wraps an *http.Server with the drain sequence.
type Server struct {
	srv      *http.Server
	opts     Options
	draining atomic.Bool
	serving  atomic.Bool
	inFlight atomic.Int64
}

// New wraps srv and sets srv.IdleTimeout when unset. srv.Handler may be set
// after New (it usually needs ReadyHandler); Serve wraps it to count
// in-flight requests, which every phase logs.
func New(srv *http.Server, opts Options) *Server {
	s := &Server{srv: srv, opts: opts.withDefaults()}
	if srv.IdleTimeout == 0 {
		srv.IdleTimeout = s.opts.IdleTimeout
	}
	return s
}

// Options returns the options in effect, defaults filled in.
func (s *Server) Options() Options { return s.opts }

// Draining reports whether shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// InFlight is the number of requests being served right now.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// track counts in-flight requests and, once draining, turns keep-alive off
// response by response: "Connection: close" makes the client (the load
// balancer, or kube-proxy's pinned connection) drop this connection after
// the answer and open a fresh one, which no longer leads here once the
// deregistration has reached it. Idle connections are left open until
// Shutdown: closing one the load balancer is about to reuse would be the
// keep-alive race graceful exists to avoid.
func (s *Server) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// ReadyHandler answers 200 while the server serves and 503 from the moment
// shutdown begins (and before serving starts), so Kubernetes takes the pod
// out of its EndpointSlices at once.
func (s *Server) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if s.draining.Load() || !s.serving.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "shutting down")
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// ListenAndServe is the convenience for a main: it listens on srv.Addr
// and serves until ctx is done or one of Options.Signals arrives
// (NotifyContext: a second signal exits at once), then drains as Serve
// does. Pair it with FromEnv to take the drain settings from the pod's env.
func (s *Server) ListenAndServe(ctx context.Context) error {
	addr := s.srv.Addr
	if addr == "" {
		addr = ":http"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := s.NotifyContext(ctx)
	defer stop()
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then runs the drain sequence and
// returns when it is over: nil after a clean shutdown, ErrShutdownTimeout
// when requests had to be cut, or at once the server's own error.
//
// ctx is the only stop signal: Serve never subscribes to OS signals, so the
// caller decides what stops it (NotifyContext in a main, a supervisor in a
// larger program). It is an oklog/run actor as it stands:
//
//	ctx, cancel := context.WithCancel(context.Background())
//	g.Add(func() error { return gs.Serve(ctx, ln) }, func(error) { cancel() })
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	h := s.srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	s.srv.Handler = s.track(h)
	errc := make(chan error, 1)
	s.serving.Store(true)
	go func() { errc <- s.srv.Serve(ln) }()
	s.opts.Logger.Info("serving", "addr", ln.Addr().String(), "drain_delay", s.opts.DrainDelay,
		"shutdown_timeout", s.opts.ShutdownTimeout, "idle_timeout", s.srv.IdleTimeout)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return s.drain(context.Cause(ctx), errc)
}

// drain runs phases 1–3 once ctx is done.
func (s *Server) drain(cause error, errc <-chan error) error {
	log := s.opts.Logger
	start := time.Now()
	s.draining.Store(true)
	log.Info("shutdown begun: readiness failing, keep-alives off, still serving", "cause", cause.Error(),
		"drain_delay", s.opts.DrainDelay, "in_flight", s.InFlight())

	time.Sleep(s.opts.DrainDelay)
	log.Info("drain delay over: closing listener and idle connections",
		"elapsed", time.Since(start), "in_flight", s.InFlight())

	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		log.Warn("shutdown deadline passed: closing connections with requests in flight",
			"elapsed", time.Since(start), "in_flight", s.InFlight())
		s.srv.Close()
		err = ErrShutdownTimeout
	}
	if serr := <-errc; err == nil && !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	if err == nil {
		log.Info("shutdown complete", "elapsed", time.Since(start))
	}
	return err
}
