package alb

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// benchBackend is a minimal Go server, the same for the direct and the
// proxied runs, so the difference is the proxy's cost.
func benchBackend(b *testing.B, ip string) Target {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return Target{IP: ip, Port: ln.Addr().(*net.TCPAddr).Port}
}

func runLoad(b *testing.B, url string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkDirect is the baseline: client straight to the backend.
func BenchmarkDirect(b *testing.B) {
	t := benchBackend(b, "127.0.0.51")
	runLoad(b, "http://"+t.String()+"/")
}

// BenchmarkProxy is the same load through the LB, access log on (as in the
// lab), three nodes, keep-alive to the backend.
func BenchmarkProxy(b *testing.B) {
	t := benchBackend(b, "127.0.0.52")
	cfg := DefaultConfig()
	cfg.HealthCheck.Interval = 10 * time.Millisecond
	cfg.HealthCheck.HealthyThreshold = 1
	cfg.Propagation = 0
	cfg.AccessLog = io.Discard
	cfg.OnRequest = func(*RequestInfo) {}
	lb, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer lb.Close()
	lb.Register(t)
	for lb.HealthOf(t).State != StateHealthy {
		time.Sleep(time.Millisecond)
	}
	runLoad(b, lb.URL()+"/")
}
