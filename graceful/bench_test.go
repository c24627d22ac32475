package graceful

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
)

// BenchmarkBare and BenchmarkGraceful serve the same handler over real
// loopback keep-alive connections, without and with graceful's wrapper.
// bench/graceful/run.sh runs both and prints the overhead (target ≤ 2 %).

func benchServe(b *testing.B, wrap bool) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	ctx, cancel := context.WithCancel(context.Background())
	if wrap {
		gs := New(srv, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		go gs.Serve(ctx, ln)
	} else {
		go srv.Serve(ln)
	}
	defer func() { cancel(); srv.Close() }()
	url := "http://" + ln.Addr().String() + "/"
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

func BenchmarkBare(b *testing.B)     { benchServe(b, false) }
func BenchmarkGraceful(b *testing.B) { benchServe(b, true) }

// BenchmarkHandlerBare and BenchmarkHandlerGraceful measure the wrapper
// itself on the handler path, in-process: far less noise than a loopback
// round trip on a shared machine. The handler does what a small JSON/text
// endpoint does: route, set headers, write a body.
func benchHandler(b *testing.B, wrap bool) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Served-By", "pod-a")
		io.WriteString(w, "jiameng-api v1\n")
	})
	var h http.Handler = mux
	if wrap {
		h = New(&http.Server{}, Options{}).track(mux)
	}
	req, _ := http.NewRequest("GET", "http://example.test/", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &recorder{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
}

func BenchmarkHandlerBare(b *testing.B)     { benchHandler(b, false) }
func BenchmarkHandlerGraceful(b *testing.B) { benchHandler(b, true) }
