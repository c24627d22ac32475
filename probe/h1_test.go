package probe

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// rawServer answers each connection's requests with reply(n) for the n-th
// request overall, and closes a connection after perConn requests (0:
// never), without a Connection: close header, as a server with a short
// keep-alive limit does. It counts the connections it accepted.
func rawServer(t *testing.T, perConn int, reply func(n int64) string) (string, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns, reqs atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; perConn == 0 || i < perConn; i++ {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					fmt.Fprint(c, reply(reqs.Add(1)))
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/", &conns
}

const okReply = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"

// A server that closes an idle keep-alive connection is not a failure: the
// next request sees it closed and dials a new one, as the Transport does.
func TestServerClosingIdleConnIsNoFailure(t *testing.T) {
	url, conns := rawServer(t, 1, func(int64) string { return okReply })
	sum, _ := run(t, Config{URL: url, Rate: 50, Requests: 5, Connections: 1})
	wantCounts(t, sum, 5, nil)
	if conns.Load() != 5 {
		t.Errorf("%d connections for 5 requests, one each", conns.Load())
	}
}

// Informational responses (103 Early Hints) are skipped: the request's
// status is the final one, and the next request reads its own response.
func TestInformationalResponsesSkipped(t *testing.T) {
	url, conns := rawServer(t, 0, func(n int64) string {
		if n == 1 {
			return "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + okReply
		}
		return "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"
	})
	sum, recs := run(t, Config{URL: url, Requests: 3, Connections: 1})
	wantCounts(t, sum, 1, map[timeline.Class]uint64{timeline.ClassHTTP502: 2})
	if recs[1].Status != 200 || recs[2].Status != 502 || conns.Load() != 1 {
		t.Errorf("statuses %d %d on %d connections, want 200 then 502 on one", recs[1].Status, recs[2].Status, conns.Load())
	}
}

// The timeout covers the body: headers in time and a body that stalls is
// a timeout, with the status that came.
func TestTimeoutCoversTheBody(t *testing.T) {
	url, _ := rawServer(t, 0, func(int64) string { return "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok" })
	sum, recs := run(t, Config{URL: url, Requests: 1, Connections: 1, Timeout: 200 * time.Millisecond})
	wantCounts(t, sum, 0, map[timeline.Class]uint64{timeline.ClassTimeout: 1})
	if recs[1].Status != 200 || recs[1].Bytes != 2 {
		t.Errorf("status %d, %d bytes; want 200 and the 2 bytes that came", recs[1].Status, recs[1].Bytes)
	}
}
