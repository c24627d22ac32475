package soak_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/soak"
	"github.com/rollsafe/rollsafe/timeline"
)

func TestStartMetrics(t *testing.T) {
	m, stop, err := soak.StartMetrics(soak.MetricsConfig{})
	if err != nil || m != nil {
		t.Fatalf("nothing asked: %v, %v", m, err)
	}
	stop()

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var ie *soak.InputError
	if _, _, err := soak.StartMetrics(soak.MetricsConfig{Listen: taken.Addr().String()}); err == nil || errors.As(err, &ie) || !strings.HasPrefix(err.Error(), "--metrics-listen: ") {
		t.Fatalf("taken port: %v, want a runtime error", err)
	}
	if _, _, err := soak.StartMetrics(soak.MetricsConfig{Listen: "127.0.0.1"}); !errors.As(err, &ie) || !strings.Contains(err.Error(), "missing port") {
		t.Fatalf("no port: %v, want an InputError", err)
	}
	if _, _, err := soak.StartMetrics(soak.MetricsConfig{StatsD: "no-port"}); !errors.As(err, &ie) || !strings.HasPrefix(err.Error(), `--statsd "no-port": `) {
		t.Fatalf("bad StatsD address: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m, stop, err = soak.StartMetrics(soak.MetricsConfig{Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	m.Request(timeline.Class("http_502"))
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), soak.PromRequests+`{class="http_502"} 1`) {
		t.Fatalf("/metrics:\n%s", body)
	}
}
