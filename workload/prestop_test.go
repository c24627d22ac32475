package workload

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestParsePreStop(t *testing.T) {
	exec := func(cmd ...string) *corev1.LifecycleHandler {
		return &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: cmd}}
	}
	for _, tc := range []struct {
		h     *corev1.LifecycleHandler
		kind  string
		d     time.Duration
		known bool
	}{
		{nil, "", 0, false},
		{exec("sleep", "61"), "exec", 61 * time.Second, true},
		{exec("sleep", "40s"), "exec", 40 * time.Second, true},
		{exec("/bin/sleep", "61"), "exec", 61 * time.Second, true},
		{exec("sh", "-c", "sleep 40"), "exec", 40 * time.Second, true},
		{exec("/bin/sh", "-c", "sleep 100s"), "exec", 100 * time.Second, true},
		{exec("/bin/bash", "-c", "sleep 40 && nginx -s quit"), "exec", 40 * time.Second, true},
		{exec("sh", "-c", "echo stopping; sleep 5; sleep 1m"), "exec", 65 * time.Second, true},
		{exec("sh", "-ec", "sleep 0.5"), "exec", 500 * time.Millisecond, true},
		{exec("sh", "-c", "sleep $DELAY"), "exec", 0, false},
		{exec("nginx", "-s", "quit"), "exec", 0, false},
		{exec("sleep", "forever"), "exec", 0, false},
		{exec(), "exec", 0, false},
		{&corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 20}}, "sleep", 20 * time.Second, true},
		{&corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/drain"}}, "httpGet", 0, false},
	} {
		got := ParsePreStop(tc.h)
		if got.Kind != tc.kind || got.Duration != tc.d || got.Known != tc.known {
			t.Errorf("%+v: got %+v, want %s %v %v", tc.h, got, tc.kind, tc.d, tc.known)
		}
	}
}
