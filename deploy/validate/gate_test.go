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

	t.Run("clean rollout passes", func(t *testing.T) {
		code, out := runGate(t, bin, srv.URL)
		if code != 0 || !strings.Contains(out, "zero failed requests") {
			t.Fatalf("exit %d, want 0\n%s", code, out)
		}
		if n.Load() == 0 {
			t.Fatal("the probe sent nothing")
		}
	})
	t.Run("a 502 during the rollout fails the gate", func(t *testing.T) {
		failEvery.Store(10)
		defer failEvery.Store(0)
		code, out := runGate(t, bin, srv.URL)
		if code != 1 || !strings.Contains(out, "requests failed during the rollout") {
			t.Fatalf("exit %d, want 1 naming failed requests\n%s", code, out)
		}
	})
	t.Run("a failed rollout fails the gate", func(t *testing.T) {
		code, out := runGate(t, bin, srv.URL, "FAKE_ROLLOUT_RC=1")
		if code != 1 || !strings.Contains(out, "kubectl rollout status exited 1") {
			t.Fatalf("exit %d, want 1 naming the rollout\n%s", code, out)
		}
	})
	t.Run("a URL that never answers is exit 3, not failed requests", func(t *testing.T) {
		code, out := runGate(t, bin, closedURL(t))
		if code != 3 || !strings.Contains(out, "the probe could not run (probe exited 3") || strings.Contains(out, "requests failed") {
			t.Fatalf("exit %d, want 3 saying the probe could not run\n%s", code, out)
		}
	})
	t.Run("a bad PROBE_RATE is exit 2", func(t *testing.T) {
		code, out := runGate(t, bin, srv.URL, "PROBE_RATE=fast")
		if code != 2 || !strings.Contains(out, "the probe refused its input (probe exited 2") {
			t.Fatalf("exit %d, want 2 saying the probe refused its input\n%s", code, out)
		}
	})
	t.Run("no PROBE_URL is a usage error", func(t *testing.T) {
		code, out := runGate(t, bin, "")
		if code == 0 || !strings.Contains(out, "PROBE_URL") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
}
