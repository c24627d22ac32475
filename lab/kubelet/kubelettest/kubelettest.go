// Package kubelettest is a tiny pod server for tests of kubelet, cluster and
// the lab: the test binary re-executes itself as a real HTTP server on
// $POD_IP:$PORT whose readiness, SIGTERM handling and crashes are set through
// the pod's env, and which writes what it saw (start, SIGTERM, preStop) to an
// events file, so tests assert on what really happened to a real process.
//
// Use: call Main first in TestMain, then run pods with Command() and
// Server{...}.Env().
package kubelettest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Env names understood by the server.
const (
	envServer     = "ROLLSAFE_TESTSERVER"  // "1": run the server instead of the tests
	envSleeper    = "ROLLSAFE_TESTSLEEPER" // "1": just sleep (the forked grandchild)
	envReadyAfter = "TS_READY_AFTER"       // /ready answers 503 until this long after start
	envOnSIGTERM  = "TS_ON_SIGTERM"        // exit (default) | ignore
	envExitAfter  = "TS_EXIT_AFTER"        // crash this long after start
	envExitCode   = "TS_EXIT_CODE"         // ... with this code
	envEvents     = "TS_EVENTS"            // file to append events to
	envFork       = "TS_FORK"              // "1": fork a sleeping grandchild into the group
)

// Server configures one pod's test server.
type Server struct {
	ReadyAfter time.Duration
	// IgnoreSIGTERM keeps serving after SIGTERM (only SIGKILL ends it);
	// otherwise the server exits 0 at once on SIGTERM.
	IgnoreSIGTERM bool
	// ExitAfter > 0 makes the server exit on its own with ExitCode.
	ExitAfter time.Duration
	ExitCode  int
	// Events is the file the server appends its events to.
	Events string
	// Fork starts a grandchild that sleeps forever, to prove the group dies.
	Fork bool
}

// Env is the container env that makes Command() behave as s says.
func (s Server) Env() []corev1.EnvVar {
	// A -race test binary sleeps 1 s at exit by default (atexit_sleep_ms):
	// the server must exit when it says it does.
	env := []corev1.EnvVar{{Name: envServer, Value: "1"}, {Name: "GORACE", Value: "atexit_sleep_ms=0"}}
	add := func(k, v string) { env = append(env, corev1.EnvVar{Name: k, Value: v}) }
	if s.ReadyAfter > 0 {
		add(envReadyAfter, s.ReadyAfter.String())
	}
	if s.IgnoreSIGTERM {
		add(envOnSIGTERM, "ignore")
	}
	if s.ExitAfter > 0 {
		add(envExitAfter, s.ExitAfter.String())
		add(envExitCode, strconv.Itoa(s.ExitCode))
	}
	if s.Events != "" {
		add(envEvents, s.Events)
	}
	if s.Fork {
		add(envFork, "1")
	}
	return env
}

// Command runs the server: the test binary itself.
func Command() []string {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return []string{exe}
}

// Main turns this process into the test server (or the grandchild sleeper)
// when the env says so, and never returns then. Call it first in TestMain.
func Main() {
	switch {
	case os.Getenv(envSleeper) == "1":
		Append(os.Getenv(envEvents), "grandchild")
		select {}
	case os.Getenv(envServer) == "1":
		if err := serve(); err != nil {
			fmt.Fprintln(os.Stderr, "testserver:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
}

func serve() error {
	start := time.Now()
	dur := func(k string) time.Duration {
		d, _ := time.ParseDuration(os.Getenv(k))
		return d
	}
	events := os.Getenv(envEvents)
	ln, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("POD_IP"), os.Getenv("PORT")))
	if err != nil {
		return err
	}
	Append(events, "start")
	if os.Getenv(envFork) == "1" {
		exe, _ := os.Executable()
		gc := exec.Command(exe)
		gc.Env = append(os.Environ(), envSleeper+"=1", envServer+"=")
		if err := gc.Start(); err != nil {
			return err
		}
		Append(events, "forked "+strconv.Itoa(gc.Process.Pid))
	}
	readyAfter := dur(envReadyAfter)
	mux := http.NewServeMux()
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		if time.Since(start) < readyAfter {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/prestop", func(w http.ResponseWriter, r *http.Request) {
		Append(events, "prestop-http")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, os.Getenv("POD_NAME"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	var crash <-chan time.Time
	if d := dur(envExitAfter); d > 0 {
		crash = time.After(d)
	}
	for {
		select {
		case <-sig:
			Append(events, "sigterm")
			if os.Getenv(envOnSIGTERM) != "ignore" {
				return nil // exit at once, as a server without graceful shutdown does
			}
		case <-crash:
			Append(events, "crash")
			code, _ := strconv.Atoi(os.Getenv(envExitCode))
			os.Exit(code)
		}
	}
}

var appendMu sync.Mutex

// Append writes "<name> <unix nanos> <pid>" to the events file (no-op
// without one). Hooks in tests use the same format through sh.
func Append(path, name string) {
	if path == "" {
		return
	}
	appendMu.Lock()
	defer appendMu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %d %d\n", name, time.Now().UnixNano(), os.Getpid())
}

// Event is one line of an events file.
type Event struct {
	Name string // "start", "sigterm", "crash", "prestop-http", "forked <pid>", "grandchild", or a hook's own
	Time time.Time
	Pid  int
}

// ReadEvents reads an events file; a missing file is no events.
func ReadEvents(path string) ([]Event, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			return nil, fmt.Errorf("%s:%d: bad event line %q", path, line, sc.Text())
		}
		n := len(fields)
		ns, err1 := strconv.ParseInt(fields[n-2], 10, 64)
		pid, err2 := strconv.Atoi(fields[n-1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s:%d: bad event line %q", path, line, sc.Text())
		}
		out = append(out, Event{Name: strings.Join(fields[:n-2], " "), Time: time.Unix(0, ns), Pid: pid})
	}
	return out, sc.Err()
}

// Find returns the first event whose name starts with prefix.
func Find(events []Event, prefix string) (Event, bool) {
	for _, e := range events {
		if strings.HasPrefix(e.Name, prefix) {
			return e, true
		}
	}
	return Event{}, false
}

// HookCommand is an exec hook that appends name to the events file (with
// its own pid via the shell) and then sleeps for sleep seconds (may be 0).
func HookCommand(events, name string, sleep float64) []string {
	return []string{"sh", "-c", fmt.Sprintf(`echo "%s $(date +%%s%%N) $$" >> '%s'; sleep %g; echo "%s-done $(date +%%s%%N) $$" >> '%s'`, name, events, sleep, name, events)}
}

// ProcessGone reports whether pid no longer runs: absent, or a zombie
// waiting for a reaper that is not us with every thread gone (a leader
// thread turns Z before its other threads have let go of its sockets).
func ProcessGone(pid int) bool {
	dir := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X') {
		return false
	}
	tasks, err := os.ReadDir(dir + "/task")
	return err != nil || len(tasks) <= 1
}

// WaitGone polls until pid is gone or limit passes; the limit is a bound on
// a liveness wait, not a speed assertion.
func WaitGone(pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if ProcessGone(pid) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ProcessGone(pid)
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
