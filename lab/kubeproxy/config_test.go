package kubeproxy

import (
	"errors"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/timeline"
)

func TestConfigRefusesWhatTheLabMustNotRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"non-loopback NodePort", func(c *Config) { c.Listen = "0.0.0.0:30080" }, "Listen"},
		{"non-loopback health check", func(c *Config) { c.Policy, c.HealthCheckListen = PolicyLocal, "10.0.0.1:31000" }, "HealthCheckListen"},
		{"health check with Cluster", func(c *Config) { c.HealthCheckListen = "127.0.0.1:0" }, "Cluster Service has no healthCheckNodePort"},
		{"unknown policy", func(c *Config) { c.Policy = "local" }, "Policy"},
		{"negative lag", func(c *Config) { c.Lag = -1 }, "Lag"},
		{"no name", func(c *Config) { c.Name = "" }, "Name"},
	} {
		cfg := DefaultConfig("n1", "127.0.0.1:0")
		tc.edit(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New error %v, want one naming %s", tc.name, err, tc.want)
		}
	}
}

// The node's record of what it learned is ground truth: Source lab, the
// NodePort as Object (the load balancer's target), the verdict as State.
func TestLearnedRecordIsGroundTruth(t *testing.T) {
	rec := newRecorder()
	a := startPod(t, "a")
	n := startNode(t, rec, "n1", func(c *Config) { c.Scenario = "s" })
	n.Update([]Endpoint{a.ready("n1"), a.terminating("n1", true)})
	r := rec.learned(t, "n1")
	if r.Kind != timeline.KindEvent || r.Source != "lab" || r.Reason != ReasonLearned || r.Scenario != "s" {
		t.Errorf("record %+v: want an event from lab with reason %s", r, ReasonLearned)
	}
	if r.Object != n.Addr() || r.State != string(Forward) || r.Attrs["usable"] != a.addr.String() || r.Attrs["local_ready"] != "1" {
		t.Errorf("record %+v: want object %s, state forward, usable %s, local_ready 1", r, n.Addr(), a.addr)
	}
}

// A sink's error is kept and reported by Close.
func TestSinkErrorIsKept(t *testing.T) {
	boom := errors.New("disk full")
	calls := make(chan struct{}, 1)
	cfg := DefaultConfig("n1", "127.0.0.1:0")
	cfg.Lag = 0
	cfg.Sink = func(*timeline.Record) error { calls <- struct{}{}; return boom }
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Update(nil)
	<-calls
	if err := n.Close(); !errors.Is(err, boom) {
		t.Errorf("Close = %v, want the sink's error", err)
	}
}
