package graceful

import (
	"context"
	"os"
	"os/signal"
	"sync"
)

// SignalError is the cause of a context NotifyContext cancelled: the signal
// that arrived.
type SignalError struct{ Signal os.Signal }

func (e SignalError) Error() string { return "signal " + e.Signal.String() }

// NotifyContext is the signal layer over Serve for a main: the returned
// context is cancelled, with a SignalError as its cause, on the first of
// the Server's Options.Signals (default SIGTERM and SIGINT); a second one
// calls Options.ForceExit (default os.Exit(1)), because whoever sends it
// wants the drain cut short. stop unsubscribes and cancels; call it once
// Serve has returned. Subscription happens before NotifyContext returns, so a signal
// sent once the server answers cannot hit Go's default handler and kill
// the process.
func (s *Server) NotifyContext(parent context.Context) (ctx context.Context, stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, s.opts.Signals...)
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	go s.watchSignals(sigs, cancel, done)
	return ctx, sync.OnceFunc(func() {
		signal.Stop(sigs)
		close(done)
		cancel(context.Canceled)
	})
}

// watchSignals cancels on the first signal and force-exits on the second.
func (s *Server) watchSignals(sigs <-chan os.Signal, cancel context.CancelCauseFunc, done <-chan struct{}) {
	for n := 0; ; n++ {
		select {
		case sig := <-sigs:
			if n == 0 {
				cancel(SignalError{sig})
				continue
			}
			s.opts.Logger.Warn("second signal: exiting at once", "signal", sig.String(),
				"in_flight", s.InFlight())
			s.opts.ForceExit()
			return
		case <-done:
			return
		}
	}
}
