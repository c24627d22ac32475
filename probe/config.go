// Package probe sends HTTP traffic at a URL on an open-model schedule and
// records every request as a timeline.Record: when it was due, when it went
// out, how long it took, what answered and how it failed. It is the library
// behind `rollsafe probe`; the lab calls Run in-process.
package probe

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"time"
)

// Protocol selects the HTTP version offered over TLS (plain http is always HTTP/1.1).
type Protocol string

const (
	ProtocolAuto  Protocol = "auto" // offer h2 and http/1.1 by ALPN, as browsers and curl do
	ProtocolHTTP1 Protocol = "1.1"
	ProtocolHTTP2 Protocol = "2" // require h2: a server that does not negotiate it is a tls failure
)

// Defaults used when a Config field is zero.
const (
	DefaultConnections = 10
	DefaultTimeout     = 10 * time.Second
	// DefaultIdleConnTimeout is half the ALB's default idle timeout (60 s):
	// the prober closes an idle keep-alive connection before the load
	// balancer does. Otherwise a request sent on a connection the load
	// balancer closed that instant fails without reaching it — a failure of
	// the prober's, not of the rollout.
	DefaultIdleConnTimeout = 30 * time.Second
	DefaultReplicaHeader   = "X-Served-By"
	DefaultLateAfter       = time.Millisecond
	DefaultSource          = "probe"
	// MaxVersionBody bounds how much of a body is kept for VersionRegex.
	MaxVersionBody = 64 << 10
)

// Config says what to send and how. Zero values take the defaults above.
type Config struct {
	URL string
	// Rate is requests per second on a fixed schedule (open model). 0 sends
	// as fast as Connections workers allow (closed model, for throughput).
	Rate float64
	// Connections is the number of concurrent workers, and with keep-alive
	// the size of the connection pool.
	Connections int
	// NewConn opens a fresh TCP (and TLS) connection per request, as curl in
	// a loop does; keep-alive failure modes then disappear and others appear.
	NewConn bool
	// Duration bounds the schedule (0: until Requests or ctx ends).
	Duration time.Duration
	// Requests bounds the number of requests (0: until Duration or ctx ends).
	Requests uint64
	// Timeout bounds one request from its send to the end of its body.
	Timeout time.Duration
	// IdleConnTimeout closes a keep-alive connection idle this long; keep
	// it below the load balancer's idle timeout (0: DefaultIdleConnTimeout).
	IdleConnTimeout time.Duration
	Method          string
	Headers         http.Header
	Body            []byte
	Insecure        bool
	Protocol        Protocol
	// ReplicaHeader names the response header that says which backend answered.
	ReplicaHeader string
	// VersionHeader names a response header carrying the app version; if
	// empty, VersionRegex (first group, or the whole match) is tried on the body.
	VersionHeader string
	VersionRegex  *regexp.Regexp
	// LateAfter is how far behind its schedule a send may start before it
	// counts as late (no worker or connection was free in time).
	LateAfter time.Duration
	// Resolver resolves the URL's host (nil: the system's). Names under
	// .invalid never reach it (see newTransport).
	Resolver *net.Resolver
	// Shard makes this run one of several workers sharing one schedule
	// (see Shard); the zero value is the whole schedule.
	Shard Shard
	// Epoch is when the schedule starts (zero: when Run is called). Workers
	// of one run share it so their slots interleave exactly.
	Epoch time.Time
	// RunID is the run part of every trace id (0: random). Workers of one
	// run share it; their sequence numbers never collide (see Shard).
	RunID uint32
	// Source and Scenario label every record.
	Source   string
	Scenario string
	// Progress, if set, is called about once a second with the running
	// summary, from the goroutine that aggregates (do not keep s).
	Progress func(s *Summary)
}

// Shard is worker Index (from 0) of Of workers. The schedule's slots are
// numbered 1, 2, 3, … as in a single run at Rate; the worker sends the
// slots whose number is Index+1 modulo Of, so each worker sends Rate/Of and
// the workers together send the single run's schedule, each slot once, the
// slot number being the record's Seq. Requests bounds the slots of the
// whole run, not of one worker.
type Shard struct {
	Index, Of int
}

func (s Shard) check() error {
	if s.Of < 0 || s.Index < 0 || (s.Of > 0 && s.Index >= s.Of) || (s.Of == 0 && s.Index != 0) {
		return fmt.Errorf("Shard %d of %d: want 0 <= Index < Of", s.Index, s.Of)
	}
	return nil
}

// withDefaults fills zero fields and checks the rest. Errors name the field.
func (c Config) withDefaults() (Config, *url.URL, error) {
	if c.URL == "" {
		return c, nil, errors.New("no URL given")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return c, nil, fmt.Errorf("URL %q: %v", c.URL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return c, nil, fmt.Errorf("URL %q: scheme must be http or https", c.URL)
	}
	if u.Host == "" {
		return c, nil, fmt.Errorf("URL %q: no host", c.URL)
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		return c, nil, fmt.Errorf("Rate %v: must be a finite number >= 0", c.Rate)
	}
	if c.Connections < 0 {
		return c, nil, fmt.Errorf("Connections %d: must be >= 0", c.Connections)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Duration", c.Duration}, {"Timeout", c.Timeout}, {"LateAfter", c.LateAfter}, {"IdleConnTimeout", c.IdleConnTimeout}} {
		if d.v < 0 {
			return c, nil, fmt.Errorf("%s %v: must be >= 0", d.name, d.v)
		}
	}
	if err := c.Shard.check(); err != nil {
		return c, nil, err
	}
	if c.Shard.Of == 0 {
		c.Shard.Of = 1
	}
	if c.Connections == 0 {
		c.Connections = DefaultConnections
	}
	if c.IdleConnTimeout == 0 {
		c.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Method == "" {
		c.Method = http.MethodGet
	}
	if c.ReplicaHeader == "" {
		c.ReplicaHeader = DefaultReplicaHeader
	}
	if c.LateAfter == 0 {
		c.LateAfter = DefaultLateAfter
	}
	if c.Source == "" {
		c.Source = DefaultSource
	}
	switch c.Protocol {
	case "":
		c.Protocol = ProtocolAuto
	case ProtocolAuto, ProtocolHTTP1, ProtocolHTTP2:
	default:
		return c, nil, fmt.Errorf("Protocol %q: want auto, 1.1 or 2", c.Protocol)
	}
	if c.Protocol == ProtocolHTTP2 && u.Scheme != "https" {
		return c, nil, fmt.Errorf("Protocol 2 needs an https URL (h2 is negotiated by TLS ALPN)")
	}
	return c, u, nil
}
