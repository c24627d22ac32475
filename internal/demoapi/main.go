package demoapi

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rollsafe/rollsafe/graceful"
)

// Config is the demo API's command line.
type Config struct {
	Listen   string
	Shutdown string // graceful | immediate
	Identity Identity
	Graceful graceful.Options
}

// usageError is a bad flag or environment value: exit 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// parse reads flags over env over defaults. Env names match the flags
// (LISTEN, SHUTDOWN_MODE, VERSION) plus graceful's DRAIN_DELAY,
// SHUTDOWN_TIMEOUT, IDLE_TIMEOUT, and PORT/POD_IP as the lab and a pod set them.
func parse(args []string, stderr io.Writer) (Config, error) {
	opts, err := graceful.FromEnv(graceful.DefaultOptions())
	if err != nil {
		return Config{}, usageError{err}
	}
	cfg := Config{Identity: Identity{Service: "jiameng-api", Replica: ReplicaFromEnv()}}
	fs := flag.NewFlagSet("demo-api", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line by Main
	fs.StringVar(&cfg.Listen, "listen", defaultListen(), "address to listen on (env LISTEN; else $POD_IP:$PORT; else :1325)")
	fs.StringVar(&cfg.Shutdown, "shutdown", envOr("SHUTDOWN_MODE", "graceful"), "on SIGTERM: graceful (drain, then exit) or immediate (exit at once, like the seeds' pods)")
	fs.StringVar(&cfg.Identity.Version, "version", envOr("VERSION", "v1"), "version string answered on / and /version (env VERSION)")
	fs.StringVar(&cfg.Identity.Service, "name", cfg.Identity.Service, "service name answered on /")
	fs.Var(durationFlag{&opts.DrainDelay}, "drain-delay", "keep serving this long after SIGTERM with readiness failing (env DRAIN_DELAY)")
	fs.Var(durationFlag{&opts.ShutdownTimeout}, "shutdown-timeout", "deadline for in-flight requests after the drain (env SHUTDOWN_TIMEOUT)")
	fs.Var(durationFlag{&opts.IdleTimeout}, "idle-timeout", "keep-alive idle timeout; keep it above the ALB's 60s (env IDLE_TIMEOUT)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "Usage: demo-api [flags]")
			fs.PrintDefaults()
		}
		return Config{}, usageError{err}
	}
	if fs.NArg() > 0 {
		return Config{}, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if cfg.Shutdown != "graceful" && cfg.Shutdown != "immediate" {
		return Config{}, usageError{fmt.Errorf("-shutdown %q: want graceful or immediate", cfg.Shutdown)}
	}
	cfg.Graceful = opts
	return cfg, nil
}

func defaultListen() string {
	if v := os.Getenv("LISTEN"); v != "" {
		return v
	}
	if port := os.Getenv("PORT"); port != "" {
		return net.JoinHostPort(os.Getenv("POD_IP"), port)
	}
	return ":1325"
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(v string) error {
	d, err := graceful.ParseDuration(v)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

// Main runs the demo API and returns its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	cfg, err := parse(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "demo-api: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{ReplaceAttr: durationsAsText})).With("replica", cfg.Identity.Replica, "version", cfg.Identity.Version)
	cfg.Graceful.Logger = log
	if err := run(cfg, log); err != nil {
		log.Error("exit", "err", err.Error())
		return 1
	}
	return 0
}

func run(cfg Config, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	httpSrv := &http.Server{ReadHeaderTimeout: 10 * time.Second}
	if cfg.Shutdown == "immediate" {
		return runImmediate(cfg, httpSrv, ln, log)
	}
	gs := graceful.New(httpSrv, cfg.Graceful)
	httpSrv.Handler = New(cfg.Identity, gs.ReadyHandler())
	// Subscribed before serving: a SIGTERM sent once /readyz has said 200
	// must drain, not kill.
	ctx, stop := gs.NotifyContext(context.Background())
	defer stop()
	return gs.Serve(ctx, ln)
}

// runImmediate exits the process the moment SIGTERM arrives: listener and
// connections die with it, as with an app that ignores shutdown.
func runImmediate(cfg Config, httpSrv *http.Server, ln net.Listener, log *slog.Logger) error {
	httpSrv.IdleTimeout = cfg.Graceful.IdleTimeout
	httpSrv.Handler = New(cfg.Identity, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	go func() {
		sig := <-sigs
		log.Info("signal: exiting immediately", "signal", sig.String())
		os.Exit(0)
	}()
	log.Info("serving", "addr", ln.Addr().String(), "shutdown", "immediate")
	return httpSrv.Serve(ln)
}

// durationsAsText logs "15s" rather than 15000000000.
func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
