package graceful

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults. They fit Kubernetes' default terminationGracePeriodSeconds of 30 s:
// DrainDelay + ShutdownTimeout = 25 s leaves 5 s before SIGKILL.
const (
	// DefaultDrainDelay is how long the server keeps serving after the
	// signal. AWS documents no bound on how long an ALB node keeps
	// routing to a deregistered target; the AWS Load Balancer Controller's
	// maintainers recommend waiting in preStop because "we have no
	// information on when the LBs actually stop sending traffic". 15 s covers
	// the controller's reconcile plus the propagation seen in practice.
	DefaultDrainDelay = 15 * time.Second
	// DefaultShutdownTimeout bounds http.Server.Shutdown: in-flight requests
	// get this long to finish once the drain delay is over.
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultIdleTimeout keeps idle keep-alive connections open longer than
	// the ALB's default idle timeout (60 s). AWS: "we recommend that you
	// configure the idle timeout of your application to be larger than the
	// idle timeout configured for the load balancer" — otherwise the app
	// closes a connection the ALB is about to reuse, and that request gets a
	// 502. Go's own default (IdleTimeout 0 → ReadTimeout, often 0 = forever)
	// is safe but leaks idle connections; 75 s is the usual choice.
	DefaultIdleTimeout = 75 * time.Second
)

// Environment variables read by FromEnv, so a manifest can tune the app
// without a rebuild. Values are Go durations ("15s", "1m30s") or plain
// integers meaning seconds ("15"), like the Kubernetes fields they pair with.
const (
	EnvDrainDelay      = "DRAIN_DELAY"
	EnvShutdownTimeout = "SHUTDOWN_TIMEOUT"
	EnvIdleTimeout     = "IDLE_TIMEOUT"
)

// Options configure a Server. The zero value means "all defaults".
type Options struct {
	DrainDelay      time.Duration // serve this long once Serve's ctx is done, readiness failing
	ShutdownTimeout time.Duration // deadline for http.Server.Shutdown after the drain
	IdleTimeout     time.Duration // set on the http.Server when it has none
	Signals         []os.Signal   // what NotifyContext catches; default SIGTERM and SIGINT
	Logger          *slog.Logger  // default slog.Default()
	// ForceExit is what NotifyContext calls on a second signal. Default: os.Exit(1).
	ForceExit func()
}

func (o Options) withDefaults() Options {
	if o.DrainDelay < 0 {
		o.DrainDelay = 0
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if len(o.Signals) == 0 {
		o.Signals = []os.Signal{syscall.SIGTERM, os.Interrupt}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ForceExit == nil {
		o.ForceExit = func() { os.Exit(1) }
	}
	return o
}

// DefaultOptions returns the defaults, DrainDelay included (the zero Options
// leaves DrainDelay at 0 so that "no drain" can be asked for explicitly).
func DefaultOptions() Options {
	return Options{
		DrainDelay:      DefaultDrainDelay,
		ShutdownTimeout: DefaultShutdownTimeout,
		IdleTimeout:     DefaultIdleTimeout,
	}
}

// FromEnv overrides o with the environment's DRAIN_DELAY, SHUTDOWN_TIMEOUT
// and IDLE_TIMEOUT. An unparsable value is an error naming the variable.
func FromEnv(o Options) (Options, error) {
	return fromLookup(o, os.LookupEnv)
}

func fromLookup(o Options, lookup func(string) (string, bool)) (Options, error) {
	for _, f := range []struct {
		name string
		dst  *time.Duration
	}{
		{EnvDrainDelay, &o.DrainDelay},
		{EnvShutdownTimeout, &o.ShutdownTimeout},
		{EnvIdleTimeout, &o.IdleTimeout},
	} {
		v, ok := lookup(f.name)
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		d, err := ParseDuration(v)
		if err != nil {
			return o, fmt.Errorf("%s=%q: %v", f.name, v, err)
		}
		*f.dst = d
	}
	return o, nil
}

// ParseDuration accepts a Go duration ("15s") or an integer number of
// seconds ("15"). Negative values are refused, and so are more seconds than
// an int32 holds (68 years: no setting needs more, and a larger count could
// overflow a Duration). It is rollsafe's one parser for durations people
// write: these env vars, and the duration annotations check and the lab
// read from manifests.
func ParseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		switch {
		case n < 0:
			return 0, fmt.Errorf("negative duration")
		case n > math.MaxInt32:
			return 0, fmt.Errorf("out of range (at most %d seconds)", math.MaxInt32)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("not a duration (want e.g. 15s, 1m30s or 15)")
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration")
	}
	return d, nil
}
