package demoapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRoutes(t *testing.T) {
	ready := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
	srv := httptest.NewServer(New(Identity{Service: "jiameng-api", Version: "42", Replica: "pod-a"}, ready))
	defer srv.Close()
	for _, c := range []struct {
		path     string
		code     int
		contains string
	}{
		{"/", 200, "jiameng-api 42\n"},
		{"/version", 200, "42\n"},
		{"/healthz", 200, "ok"},
		{"/readyz", 503, ""},
		{"/slow?ms=5", 200, "slept 5ms"},
		{"/slow?ms=abc", 400, `ms=\"abc\"`},
		{"/slow?ms=-1", 400, "want an integer"},
		{"/slow?ms=99999999", 400, "want an integer"},
		{"/metrics", 200, `demo_api_requests_total{code="200",route="/"} 1`},
		{"/nope", 404, ""},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(body), c.contains) {
			t.Errorf("GET %s = %d %q; want %d containing %q", c.path, resp.StatusCode, body, c.code, c.contains)
		}
		if got := resp.Header.Get("X-Served-By"); got != "pod-a" {
			t.Errorf("GET %s: X-Served-By = %q, want pod-a", c.path, got)
		}
	}
}
