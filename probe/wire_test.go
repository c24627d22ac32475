package probe

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/rollsafe/rollsafe/timeline"
)

// The no-retry body trick must not change the bytes on the wire: a GET has
// no Content-Length and no Transfer-Encoding, a POST with a body has its
// Content-Length and body, and user headers and Host go out as given.
func TestWireFormat(t *testing.T) { bothPaths(t, testWireFormat) }

func testWireFormat(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *http.Request, 4)
	bodies := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					b, _ := io.ReadAll(req.Body)
					got <- req
					bodies <- string(b)
					c.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
				}
			}()
		}
	}()
	url := "http://" + ln.Addr().String() + "/path?q=1"
	sum, _ := run(t, Config{URL: url, Requests: 1, Rate: 100, Headers: http.Header{"Host": {"app.example"}, "X-A": {"1"}}})
	wantCounts(t, sum, 1, nil)
	req, body := <-got, <-bodies
	if req.Method != "GET" || req.Host != "app.example" || req.Header.Get("X-A") != "1" || req.URL.String() != "/path?q=1" {
		t.Errorf("GET went out as %s %s host %q headers %v", req.Method, req.URL, req.Host, req.Header)
	}
	if len(req.TransferEncoding) != 0 || req.ContentLength != 0 || req.Header.Get("Content-Length") != "" || body != "" {
		t.Errorf("GET carries a body framing: TE %v CL %d %q body %q", req.TransferEncoding, req.ContentLength, req.Header.Get("Content-Length"), body)
	}
	sum, _ = run(t, Config{URL: url, Requests: 1, Rate: 100, Method: "POST", Body: []byte(`{"a":1}`)})
	if sum.Failures[timeline.ClassOther] != 0 || sum.OK != 1 {
		t.Errorf("POST: %+v", sum)
	}
	req, body = <-got, <-bodies
	if req.Method != "POST" || req.ContentLength != 7 || body != `{"a":1}` || len(req.TransferEncoding) != 0 {
		t.Errorf("POST went out as CL %d TE %v body %q", req.ContentLength, req.TransferEncoding, body)
	}
	if !strings.HasPrefix(req.Header.Get(TraceHeader), "Root=1-") {
		t.Errorf("no trace header on POST")
	}
}
