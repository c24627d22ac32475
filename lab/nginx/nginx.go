// Package nginx runs real nginx (Debian's nginx-light) as the lab's
// in-cluster L7 hop, configured as ingress-nginx configures it for an
// Ingress: one upstream of the Service's endpoints with keep-alive, and
// proxy_next_upstream retries. What ingress-nginx does and plain nginx
// cannot — swap the endpoints in its Lua balancer without a reload — is
// stood in for by the Syncer (sync.go): it rate-limits syncs as the
// controller does and applies each by a reload (new workers; the old ones
// finish their requests). docs/lab.md says what that difference shows.
package nginx

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotInstalled is returned by New when no nginx binary is found.
var ErrNotInstalled = errors.New("nginx-ingress topology: nginx not found in PATH or /usr/sbin: install Debian's nginx-light (apt-get install -y nginx-light)")

// Config is one nginx instance (one ingress-nginx controller pod), its
// durations already at the lab's time scale.
type Config struct {
	// Listen is where the instance serves (the load balancer's target).
	Listen netip.AddrPort
	// The ingress-nginx settings (defaults.Nginx*), as nginx directives.
	ProxyNextUpstream string // proxy_next_upstream
	NextUpstreamTries int    // proxy_next_upstream_tries
	ConnectTimeout    time.Duration
	ReadTimeout       time.Duration // also proxy_send_timeout, as ingress-nginx's defaults are equal
	KeepaliveConns    int           // upstream keepalive; 0: none
	KeepaliveTimeout  time.Duration
	KeepaliveRequests int
	ClientKeepalive   time.Duration // keepalive_timeout towards the load balancer
	WorkerShutdown    time.Duration // worker_shutdown_timeout
	RequestIDHeader   string        // logged per request, the join key of the ground truth
	Binary            string        // "" finds it
	Dir               string        // "" makes a temporary one, removed by Close
	Output            *os.File      // nginx's own stderr (nil: discarded)
	removeDirOnClose  bool
}

// Instance is one running nginx master with its worker.
type Instance struct {
	cfg  Config
	cmd  *exec.Cmd
	done chan error

	mu       sync.Mutex
	reloads  int
	closed   bool
	exitErr  error
	conf     string
	accessLg string
}

// debianNginx is where Debian's package installs nginx, outside a
// non-root user's PATH.
var debianNginx = "/usr/sbin/nginx"

// Find returns the nginx binary: PATH, then Debian's /usr/sbin/nginx.
func Find() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat(debianNginx); err == nil {
		return debianNginx, nil
	}
	return "", ErrNotInstalled
}

// New writes the config with no endpoints and starts nginx.
func New(cfg Config) (*Instance, error) {
	if cfg.Binary == "" {
		b, err := Find()
		if err != nil {
			return nil, err
		}
		cfg.Binary = b
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "rollsafe-nginx-")
		if err != nil {
			return nil, err
		}
		cfg.Dir, cfg.removeDirOnClose = d, true
	}
	// Workers run as nobody when the master runs as root: they must
	// reach the temp paths below.
	if err := os.Chmod(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	in := &Instance{cfg: cfg, conf: filepath.Join(cfg.Dir, "nginx.conf"), accessLg: filepath.Join(cfg.Dir, "access.log"),
		done: make(chan error, 1)}
	if err := in.write(nil); err != nil {
		return nil, err
	}
	// -t first: a config error is one line, not a dead process.
	if out, err := exec.Command(cfg.Binary, "-t", "-q", "-p", cfg.Dir, "-c", in.conf).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nginx -t: %s", strings.TrimSpace(string(out)))
	}
	in.cmd = exec.Command(cfg.Binary, "-p", cfg.Dir, "-c", in.conf, "-g", "daemon off;")
	in.cmd.Stdout, in.cmd.Stderr = cfg.Output, cfg.Output
	in.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := in.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting nginx: %w", err)
	}
	go func() { in.done <- in.cmd.Wait() }()
	return in, nil
}

// Update writes the endpoints into the upstream and reloads nginx (SIGHUP):
// the master starts new workers with the new upstream, and the old ones
// stop accepting, finish their requests and exit.
func (in *Instance) Update(eps []netip.AddrPort) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return nil
	}
	if err := in.write(eps); err != nil {
		return err
	}
	in.reloads++
	return in.cmd.Process.Signal(syscall.SIGHUP)
}

// Reloads counts the reloads Update made.
func (in *Instance) Reloads() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.reloads
}

// write renders the config atomically (rename), so a reload never reads
// half a file.
func (in *Instance) write(eps []netip.AddrPort) error {
	tmp := in.conf + ".tmp"
	if err := os.WriteFile(tmp, []byte(render(in.cfg, eps)), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, in.conf)
}

// AccessLog is the path of the instance's access log (LogFormat).
func (in *Instance) AccessLog() string { return in.accessLg }

// Close stops nginx gracefully (SIGQUIT: workers finish their requests),
// killing it when it does not stop within the worker shutdown timeout.
func (in *Instance) Close() error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return in.exitErr
	}
	in.closed = true
	in.mu.Unlock()
	_ = in.cmd.Process.Signal(syscall.SIGQUIT)
	var err error
	select {
	case err = <-in.done:
	case <-time.After(in.cfg.WorkerShutdown + time.Second):
		_ = syscall.Kill(-in.cmd.Process.Pid, syscall.SIGKILL)
		err = <-in.done
		err = fmt.Errorf("nginx did not stop within %v: killed (%v)", in.cfg.WorkerShutdown+time.Second, err)
	}
	in.exitErr = err
	return err
}

// Remove deletes the instance's directory when New made it (call after
// reading the access log).
func (in *Instance) Remove() {
	if in.cfg.removeDirOnClose {
		os.RemoveAll(in.cfg.Dir)
	}
}

// ms writes a duration for nginx (milliseconds: the lab's time scale
// shrinks seconds to fractions).
func ms(d time.Duration) string { return strconv.FormatInt(max(d.Milliseconds(), 1), 10) + "ms" }

// LogFormat is the access log's format: one line per request, fields
// separated by "|": time (seconds.millis), request id header, method,
// status to the client, $upstream_addr and $upstream_status (one entry per
// try, ", " between tries: the ground truth of nginx's retries).
const LogFormat = `$msec|$http_%s|$request_method|$status|$upstream_addr|$upstream_status`

// render is nginx.conf: what ingress-nginx's template writes for an
// Ingress, reduced to what the lab's traffic uses. max_fails=0: the Lua
// balancer of ingress-nginx has no passive health checks, so plain nginx
// must not take a failing endpoint out for fail_timeout either.
func render(c Config, eps []netip.AddrPort) string {
	hdr := strings.ToLower(strings.ReplaceAll(c.RequestIDHeader, "-", "_"))
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("worker_processes 1;")
	w("pid %s;", filepath.Join(c.Dir, "nginx.pid"))
	w("error_log %s notice;", filepath.Join(c.Dir, "error.log"))
	w("worker_shutdown_timeout %s;", ms(c.WorkerShutdown))
	w("events { worker_connections 4096; }")
	w("http {")
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		w("  %s_temp_path %s;", t, filepath.Join(c.Dir, t+"_temp"))
	}
	w("  log_format lab '"+LogFormat+"';", hdr)
	w("  access_log %s lab;", filepath.Join(c.Dir, "access.log"))
	w("  keepalive_timeout %s;", ms(c.ClientKeepalive))
	if len(eps) > 0 {
		w("  upstream app {")
		for _, ep := range eps {
			w("    server %s max_fails=0;", ep)
		}
		if c.KeepaliveConns > 0 {
			w("    keepalive %d;", c.KeepaliveConns)
			w("    keepalive_timeout %s;", ms(c.KeepaliveTimeout))
			w("    keepalive_requests %d;", c.KeepaliveRequests)
		}
		w("  }")
	}
	w("  server {")
	w("    listen %s;", c.Listen)
	w("    location / {")
	if len(eps) == 0 {
		// ingress-nginx answers 503 for a backend without endpoints.
		w("      return 503;")
	} else {
		w("      proxy_pass http://app;")
		w("      proxy_http_version 1.1;")
		w(`      proxy_set_header Connection "";`)
		w("      proxy_next_upstream %s;", c.ProxyNextUpstream)
		w("      proxy_next_upstream_tries %d;", c.NextUpstreamTries)
		w("      proxy_connect_timeout %s;", ms(c.ConnectTimeout))
		w("      proxy_read_timeout %s;", ms(c.ReadTimeout))
		w("      proxy_send_timeout %s;", ms(c.ReadTimeout))
	}
	w("    }")
	w("  }")
	w("}")
	return b.String()
}

// Line is one access log line.
type Line struct {
	Time      time.Time
	RequestID string
	Method    string
	Status    int
	// Tries are the upstreams nginx tried, in order, each with the status
	// it got (502 for a connection error, 504 for a timeout, "" for none).
	Tries []Try
}

// Try is one upstream attempt of a request.
type Try struct {
	Addr   string
	Status string
}

// Retried says whether nginx passed the request on after a failed try.
func (l Line) Retried() bool { return len(l.Tries) > 1 }

// LastPod is the last try that reached an endpoint: nginx logs the
// upstream's name instead of an address for a try it found no endpoint
// left for ("no live upstreams").
func (l Line) LastPod() (ap netip.AddrPort, status string, ok bool) {
	for i := len(l.Tries) - 1; i >= 0; i-- {
		if a, err := netip.ParseAddrPort(l.Tries[i].Addr); err == nil {
			return a, l.Tries[i].Status, true
		}
	}
	return netip.AddrPort{}, "", false
}

// ReadLog parses an access log written in LogFormat.
func ReadLog(path string) ([]Line, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Line
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l, err := parseLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

func parseLine(s string) (Line, error) {
	f := strings.Split(s, "|")
	if len(f) != 6 {
		return Line{}, fmt.Errorf("want 6 fields, got %d", len(f))
	}
	t, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return Line{}, fmt.Errorf("time %q: %v", f[0], err)
	}
	status, err := strconv.Atoi(f[3])
	if err != nil {
		return Line{}, fmt.Errorf("status %q: %v", f[3], err)
	}
	l := Line{Time: time.UnixMilli(int64(t * 1000)), RequestID: f[1], Method: f[2], Status: status}
	if f[4] == "-" {
		return l, nil
	}
	// Both lists are ", "-separated per try (" : " between upstream
	// groups, which one location never has).
	addrs, statuses := strings.Split(f[4], ", "), strings.Split(f[5], ", ")
	for i, a := range addrs {
		tr := Try{Addr: a}
		if i < len(statuses) {
			tr.Status = statuses[i]
		}
		l.Tries = append(l.Tries, tr)
	}
	return l, nil
}
