package probe

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/cmdutil"
)

// The workers get the probe flags the user set, with every $ doubled
// (Kubernetes expands $(VAR) in a command), and none of the coordinator's.
func TestWorkerCommandPassesProbeFlagsEscaped(t *testing.T) {
	opts := &options{}
	cmd := newCmd(&cmdutil.Factory{}, opts)
	args := []string{"--rate", "400", "-H", "X-A: $(HOME)", "-H", "X-B: 2", "--kube", "--workers", "4",
		"--record", "r.ndjson", "--max-failures", "3", "--worker-command", "/bin/rollsafe"}
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	opts.cfg.URL = "http://x/$y"
	epoch := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	argv, err := workerCommand(cmd.Flags(), opts, epoch, "0badcafe")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/bin/rollsafe", "probe", "http://x/$$y", "--rate=400", "--header=X-A: $$(HOME)", "--header=X-B: 2",
		"--worker-of=4", "--worker-index=$(JOB_COMPLETION_INDEX)", "--epoch=2026-12-02T07:00:00Z", "--run-id=0badcafe"}
	if !slices.Equal(argv, want) {
		t.Fatalf("argv\n%q\nwant\n%q", argv, want)
	}
	for _, a := range argv {
		for _, coordinator := range []string{"--record", "--max-failures", "--kube", "--workers="} {
			if strings.HasPrefix(a, coordinator) {
				t.Errorf("%s reached the workers", a)
			}
		}
	}
}
