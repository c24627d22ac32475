package graceful

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests send real signals to the test process. They use SIGUSR1 and
// SIGUSR2 so that only the code under test is subscribed; NotifyContext
// subscribes before it returns, so no signal reaches Go's default handler
// (which would end the test binary).

func kill(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
}

func TestNotifyContextCancelsOnTheSignal(t *testing.T) {
	gs := New(&http.Server{}, quiet(Options{Signals: []os.Signal{syscall.SIGUSR1}}))
	ctx, stop := gs.NotifyContext(context.Background())
	defer stop()
	kill(t, syscall.SIGUSR1)
	<-ctx.Done()
	var se SignalError
	if !errors.As(context.Cause(ctx), &se) || se.Signal != syscall.SIGUSR1 {
		t.Fatalf("cause = %v; want SignalError for SIGUSR1", context.Cause(ctx))
	}
}

func TestSecondSignalForcesExit(t *testing.T) {
	forced := make(chan struct{})
	var once atomic.Bool
	gs := New(&http.Server{}, quiet(Options{
		Signals: []os.Signal{syscall.SIGUSR2},
		ForceExit: func() {
			if once.CompareAndSwap(false, true) {
				close(forced)
			}
		},
	}))
	ctx, stop := gs.NotifyContext(context.Background())
	defer stop()
	kill(t, syscall.SIGUSR2)
	<-ctx.Done()
	kill(t, syscall.SIGUSR2)
	select {
	case <-forced:
	case <-time.After(30 * time.Second):
		t.Fatal("second signal did not call ForceExit")
	}
}

// TestListenAndServeDrainsOnSignal: the convenience entry point ends on a
// signal with the same drain as a cancelled Serve.
func TestListenAndServeDrainsOnSignal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // reserve a free port for srv.Addr
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := &http.Server{Addr: addr}
	gs := New(srv, quiet(Options{DrainDelay: 100 * time.Millisecond, Signals: []os.Signal{syscall.SIGUSR1}}))
	srv.Handler = withReady(gs, nil)
	errc := make(chan error, 1)
	go func() { errc <- gs.ListenAndServe(context.Background()) }()
	t.Cleanup(func() { srv.Close() })
	// /readyz answers only once ListenAndServe has subscribed and serves.
	waitReady(t, "http://"+addr)
	kill(t, syscall.SIGUSR1)
	if err := <-errc; err != nil || !gs.Draining() {
		t.Fatalf("ListenAndServe after the signal = %v (draining %v); want nil after a drain", err, gs.Draining())
	}
}
