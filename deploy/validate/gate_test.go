package validate

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// gateEnv builds the real rollsafe binary and a FAKE kubectl (a shell
// script: no cluster can run here) whose `rollout status` sleeps a moment
// and exits with $FAKE_ROLLOUT_RC. Everything else is real: bash, the
// script, rollsafe probe, and an HTTP server on loopback.
func gateEnv(t *testing.T) (bin string) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("rollout-gate.sh needs bash")
	}
	bin = t.TempDir()
	// Built in the root module, as install-tools.sh does in the pipelines.
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "rollsafe"), "./cmd/rollsafe")
	build.Dir = RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build rollsafe: %v\n%s", err, out)
	}
	fake := "#!/usr/bin/env bash\n# FAKE kubectl for tests: only `rollout status`.\n" +
		"[ \"$1 $2\" = \"rollout status\" ] || { echo \"fake kubectl: unexpected $*\" >&2; exit 2; }\n" +
		"echo \"fake kubectl: $*\" >&2\nsleep 1\nexit \"${FAKE_ROLLOUT_RC:-0}\"\n"
	if err := os.WriteFile(filepath.Join(bin, "kubectl"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func runGate(t *testing.T, bin, url string, env ...string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("bash", Path("deploy", "cicd", "rollout-gate.sh"), "jiameng-api-dev", "jiameng-api")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PROBE_URL="+url, "PROBE_RATE=50", "SETTLE=1s", "ROLLOUT_TIMEOUT=1m")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if url != "" && code != 2 { // exit 2: the probe refused its input before recording
		if fi, err := os.Stat(filepath.Join(dir, "probe.ndjson")); err != nil || fi.Size() == 0 {
			t.Errorf("no probe record left for the CI artifact: %v", err)
		}
	}
	return code, string(out)
}

// closedURL is a loopback URL where nothing listens: every connect is refused.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	return "http://" + ln.Addr().String() + "/"
}

func TestRolloutGate(t *testing.T) {
	bin := gateEnv(t)
	var n atomic.Int64
	var failEvery atomic.Int64 // 0: never
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k := failEvery.Load(); n.Add(1)%max(k, 1) == 0 && k > 0 {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		w.Write([]byte("ok\n"))
	}))
	defer srv.Close()

	for _, c := range []struct {
		name      string
		url       string
		env       []string
		failEvery int64  // fail every nth request; 0: none
		code      int    // the exit code; -1: any but 0
		says      string // what the output must contain
		never     string // what it must not contain; "": nothing
		want      string // what was wanted, for the failure message
		sends     bool   // the probe must have reached the server
	}{
		{"clean rollout passes", srv.URL, nil, 0, 0, "zero failed requests", "", "0", true},
		{"a 502 during the rollout fails the gate", srv.URL, nil, 10, 1, "requests failed during the rollout", "", "1 naming failed requests", false},
		{"a failed rollout fails the gate", srv.URL, []string{"FAKE_ROLLOUT_RC=1"}, 0, 1, "kubectl rollout status exited 1", "", "1 naming the rollout", false},
		{"a URL that never answers is exit 3, not failed requests", closedURL(t), nil, 0, 3, "the probe could not run (probe exited 3", "requests failed", "3 saying the probe could not run", false},
		{"a bad PROBE_RATE is exit 2", srv.URL, []string{"PROBE_RATE=fast"}, 0, 2, "the probe refused its input (probe exited 2", "", "2 saying the probe refused its input", false},
		{"no PROBE_URL is a usage error", "", nil, 0, -1, "PROBE_URL", "", "not 0", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			failEvery.Store(c.failEvery)
			defer failEvery.Store(0)
			code, out := runGate(t, bin, c.url, c.env...)
			codeOK := code == c.code || (c.code == -1 && code != 0)
			if !codeOK || !strings.Contains(out, c.says) || (c.never != "" && strings.Contains(out, c.never)) {
				t.Fatalf("exit %d, want %s\n%s", code, c.want, out)
			}
			if c.sends && n.Load() == 0 {
				t.Fatal("the probe sent nothing")
			}
		})
	}
}
