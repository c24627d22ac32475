package root_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/internal/testutil/clitest"
)

func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"version"}, 0, ""},
		{[]string{"--bogus"}, 2, "rollsafe: unknown flag: --bogus (see 'rollsafe --help')\n"},
		{[]string{"nope"}, 2, `rollsafe: unknown command "nope" for "rollsafe"` + "\n"},
		{[]string{"version", "extra"}, 2, `rollsafe: unknown command "extra" for "rollsafe version" (usage: rollsafe version [flags])` + "\n"},
		{[]string{"labb"}, 2, `rollsafe: unknown command "labb" for "rollsafe"` + "\n\nDid you mean this?\n\tlab\n\n"},
		{[]string{"report"}, 2, "rollsafe: requires at least 1 arg(s), only received 0 (usage: rollsafe report FILE... [flags])\n"},
		{[]string{"probe"}, 2, "rollsafe: accepts 1 arg(s), received 0 (usage: rollsafe probe URL [flags])\n"},
		{[]string{"probe", "--rate", "x", "http://127.0.0.1:1/"}, 2,
			`rollsafe: invalid argument "x" for "--rate" flag: strconv.ParseFloat: parsing "x": invalid syntax (see 'rollsafe probe --help')` + "\n"},
		{[]string{"completion", "bash", "extra"}, 2, `rollsafe: unknown command "extra" for "rollsafe completion bash" (usage: rollsafe completion bash)` + "\n"},
	} {
		if code, _, errOut := clitest.Run(context.Background(), "", c.args...); code != c.code || errOut != c.err {
			t.Errorf("rollsafe %v: exit %d, stderr %q; want %d, %q", c.args, code, errOut, c.code, c.err)
		}
	}
}

// Installed as kubectl-rollsafe, the binary is a kubectl plugin: the real
// kubectl finds it on PATH and runs it, and help names it "kubectl rollsafe".
func TestKubectlPlugin(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "kubectl-rollsafe")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/rollsafe/rollsafe/cmd/rollsafe").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	help, err := exec.Command(bin, "lab", "--help").Output()
	if err != nil || !strings.Contains(string(help), "kubectl rollsafe lab") {
		t.Fatalf("kubectl-rollsafe lab --help (%v):\n%s", err, help)
	}
	kubectl := filepath.Join(controlplane.BinDir(), "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kubectl not built (scripts/controlplane.sh): %v", err)
		}
		t.Skipf("kubectl not built (scripts/controlplane.sh): %v", err)
	}
	cmd := exec.Command(kubectl, "rollsafe", "version")
	cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "rollsafe ") {
		t.Fatalf("kubectl rollsafe version: %v\n%s", err, out)
	}
}
