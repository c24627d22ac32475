// Package graceful shuts a Go HTTP server down without dropping a request
// behind a load balancer.
//
// Behind an ALB, a pod that exits as soon as it gets SIGTERM still receives
// new requests for a few seconds: the load balancer learns of the
// deregistration late, and its nodes learn it later still. The usual fix is
// a preStop "sleep" — which needs a shell that distroless images lack.
// graceful does the wait inside the app instead:
//
//  1. on SIGTERM/SIGINT, the readiness handler starts answering 503;
//  2. the server keeps serving normally for DrainDelay, so requests the load
//     balancer still sends are answered;
//  3. http.Server.Shutdown closes the listener and idle connections and waits
//     up to ShutdownTimeout for in-flight requests;
//  4. Run returns nil, and main exits 0.
//
// A second signal calls ForceExit (default os.Exit(1)).
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
	"os"
	"os/signal"
	"sync/atomic"
	"time"
)

// ErrShutdownTimeout is returned by Run when in-flight requests were still
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

func (s *Server) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
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

// ListenAndServe listens on srv.Addr and runs the server until a signal
// (or ctx) ends it; see Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	addr := s.srv.Addr
	if addr == "" {
		addr = ":http"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until a signal arrives or ctx is cancelled, then runs
// the drain sequence. It returns nil after a clean shutdown,
// ErrShutdownTimeout when requests had to be cut, or the server's error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, s.opts.Signals...)
	defer signal.Stop(sigs)

	log := s.opts.Logger
	h := s.srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	s.srv.Handler = s.track(h)
	errc := make(chan error, 1)
	s.serving.Store(true)
	go func() { errc <- s.srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "drain_delay", s.opts.DrainDelay,
		"shutdown_timeout", s.opts.ShutdownTimeout, "idle_timeout", s.srv.IdleTimeout)

	var cause string
	select {
	case err := <-errc:
		return err
	case sig := <-sigs:
		cause = sig.String()
	case <-ctx.Done():
		cause = "context: " + context.Cause(ctx).Error()
	}
	return s.drain(cause, sigs, errc)
}

// drain runs phases 1–3 after the first signal. A second signal at any
// point calls ForceExit.
func (s *Server) drain(cause string, sigs <-chan os.Signal, errc <-chan error) error {
	log := s.opts.Logger
	start := time.Now()
	s.draining.Store(true)
	log.Info("shutdown begun: readiness failing, still serving", "cause", cause,
		"drain_delay", s.opts.DrainDelay, "in_flight", s.InFlight())

	stopForce := s.forceOnSecond(sigs)
	defer stopForce()

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

// forceOnSecond watches for a second signal while the drain runs.
func (s *Server) forceOnSecond(sigs <-chan os.Signal) (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			s.opts.Logger.Warn("second signal: exiting at once", "signal", sig.String(),
				"in_flight", s.InFlight())
			s.opts.ForceExit()
		case <-done:
		}
	}()
	return func() { close(done) }
}
