package probe

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// run probes cfg and returns the summary and every record, by Seq.
func run(t *testing.T, cfg Config) (*Summary, map[uint64]*timeline.Record) {
	t.Helper()
	recs := map[uint64]*timeline.Record{}
	sum, err := Run(context.Background(), cfg, func(r *timeline.Record) error {
		if _, dup := recs[r.Seq]; dup {
			t.Errorf("seq %d recorded twice", r.Seq)
		}
		recs[r.Seq] = r
		return nil
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if uint64(len(recs)) != sum.Requests {
		t.Fatalf("%d records but summary counts %d", len(recs), sum.Requests)
	}
	return sum, recs
}

// wantCounts checks the summary's ok count and every failure class.
func wantCounts(t *testing.T, sum *Summary, ok uint64, fails map[timeline.Class]uint64) {
	t.Helper()
	if sum.OK != ok {
		t.Errorf("ok = %d, want %d", sum.OK, ok)
	}
	for _, c := range timeline.FailureClasses {
		if sum.Failures[c] != fails[c] {
			t.Errorf("failures[%s] = %d, want %d", c, sum.Failures[c], fails[c])
		}
	}
}

// action is what the raw fault server does with one request.
type action int

const (
	actOK    action = iota // 200, keep the connection
	act502                 // 502, keep the connection
	actReset               // read the request, then RST (SO_LINGER 0)
	actEOF                 // read the request, then close cleanly (FIN)
	actSlow                // read the request, answer nothing for `slow`, then close
)

// faultServer is a real TCP server speaking just enough HTTP/1.1 to fail
// in exact, known ways: the n-th request it receives (counting across
// connections) gets plan[n]. With one worker the probe's sequence and the
// server's count line up, so expected classes are known per request.
type faultServer struct {
	ln    net.Listener
	plan  []action
	slow  time.Duration
	n     atomic.Int64
	conns atomic.Int64
	wg    sync.WaitGroup
	// closeReused: close a kept-alive connection as soon as its next
	// request has arrived (the keep-alive race, made deterministic).
	closeReused bool
}

func newFaultServer(t *testing.T, plan []action) *faultServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &faultServer{ln: ln, plan: plan, slow: 2 * time.Second}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *faultServer) url() string { return "http://" + s.ln.Addr().String() + "/" }

func (s *faultServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c.(*net.TCPConn))
		}()
	}
}

// readRequest reads one request head (the probe sends GETs without body).
func readRequest(br *bufio.Reader) bool {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		if strings.TrimRight(line, "\r\n") == "" {
			return true
		}
	}
}

func (s *faultServer) handle(c *net.TCPConn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for served := 0; ; served++ {
		if !readRequest(br) {
			return
		}
		if s.closeReused && served > 0 {
			return // FIN right after the request arrived on a reused connection
		}
		i := int(s.n.Add(1) - 1)
		act := actOK
		if i < len(s.plan) {
			act = s.plan[i]
		}
		switch act {
		case actOK:
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Served-By: pod-a\r\n\r\nok"))
		case act502:
			c.Write([]byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad"))
		case actReset:
			c.SetLinger(0)
			return
		case actEOF:
			return
		case actSlow:
			time.Sleep(s.slow)
			return
		}
	}
}

// statusServer is a real net/http server answering the n-th request with codes[n].
func statusServer(t *testing.T, codes []int) *http.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := &http.Server{Addr: ln.Addr().String(), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1) - 1)
		code := 200
		if i < len(codes) {
			code = codes[i]
		}
		w.Header().Set("X-Served-By", "pod-"+string(rune('a'+i%3)))
		w.WriteHeader(code)
		w.Write([]byte("version=v42\n"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv
}

// bothPaths runs test over each worker's own connection (h1Conn, what
// plain http uses) and over the Transport (what https and NewConn use).
func bothPaths(t *testing.T, test func(t *testing.T)) {
	t.Run("direct", test)
	t.Run("transport", func(t *testing.T) {
		directHTTP1 = false
		defer func() { directHTTP1 = true }()
		test(t)
	})
}
