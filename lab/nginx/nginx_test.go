package nginx

import (
	"errors"
	"strings"
	"testing"
)

// Without nginx, New fails with one line saying what to install.
func TestNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	debianNginx = t.TempDir() + "/nginx"
	_, err := New(Config{})
	if !errors.Is(err, ErrNotInstalled) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "nginx-light") {
		t.Fatalf("want one line naming nginx-light, got %v", err)
	}
}

// The access log's tries: an address per try, the upstream's name for a
// try that found no endpoint left.
func TestParseLine(t *testing.T) {
	l, err := parseLine("1700000000.123|Root=1-a-b|GET|502|127.1.0.1:1325, 127.1.0.2:1325, app|502, 502, 502")
	if err != nil || l.Method != "GET" || l.Status != 502 || len(l.Tries) != 3 || !l.Retried() {
		t.Fatalf("%+v, %v", l, err)
	}
	if pod, status, ok := l.LastPod(); !ok || pod.String() != "127.1.0.2:1325" || status != "502" {
		t.Errorf("last pod %v %q %v", pod, status, ok)
	}
	if l, err := parseLine("1700000000.123|-|POST|503|-|-"); err != nil || len(l.Tries) != 0 {
		t.Errorf("no upstream: %+v, %v", l, err)
	}
	if _, err := parseLine("garbage"); err == nil {
		t.Error("garbage parsed")
	}
}
