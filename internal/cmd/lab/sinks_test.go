package lab_test

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A record or access log that cannot be written (a full disk: /dev/full)
// stops the lab with one line and exit 3, and leaves no pod behind.
func TestWriteErrorIsOneLineExit3(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full:", err)
	}
	for _, flag := range []string{"--record", "--access-log"} {
		cmd := exec.Command(bin, "lab", "--scenario", "recommended", "--rollouts", "1", "--time-scale", "0.05",
			"--report", "", flag, "/dev/full")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		msg := strings.TrimRight(stderr.String(), "\n")
		if code != 3 || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "no space left on device") {
			t.Errorf("lab %s /dev/full: exit %d, stderr %q; want exit 3 and one line saying the disk is full", flag, code, msg)
		}
		waitNoPods(t)
	}
}
