// Command genlog writes a realistic ALB access log to stdout for the
// `rollsafe logs` benchmark: a steady stream of requests to a rotating set
// of targets, with a rollout every few minutes during which some requests hit
// draining targets and fail with 502/504 and "-" target status, as in seed 000.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/rollsafe/rollsafe/observe/accesslog"
)

func main() {
	size := flag.Int64("bytes", 200<<20, "stop after writing at least this many bytes")
	seed := flag.Uint64("seed", 1, "random seed (same seed, same log)")
	rps := flag.Int("rps", 400, "requests per second of log time")
	flag.Parse()

	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer w.Flush()
	rng := rand.New(rand.NewPCG(*seed, 42))
	g := newGen(rng, *rps)
	var n int64
	buf := make([]byte, 0, 2048)
	for n < *size {
		buf = g.next(buf[:0])
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			fmt.Fprintln(os.Stderr, "genlog:", err)
			os.Exit(1)
		}
		n += int64(len(buf))
	}
}

var (
	paths  = []string{"/", "/api/v1/items", "/api/v1/items/42", "/api/v1/orders?limit=20", "/healthz", "/static/app.js", "/slow?ms=250", "/version"}
	agents = []string{"curl/7.79.1", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
		"Go-http-client/1.1", "rollsafe-probe/1.0", "okhttp/4.12.0"}
	methods = []string{"GET", "GET", "GET", "GET", "POST", "PUT"}
)

type gen struct {
	rng   *rand.Rand
	t     time.Time
	step  time.Duration
	pods  int // generation counter: targets are 10.0.<gen%4>.<gen%250+2>
	live  []string
	drain []string
	e     accesslog.Entry
}

func newGen(rng *rand.Rand, rps int) *gen {
	g := &gen{rng: rng, t: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), step: time.Second / time.Duration(rps)}
	for range 3 {
		g.live = append(g.live, g.newTarget())
	}
	g.e = accesslog.Entry{
		Type: []byte("h2"), ELB: []byte("app/k8s-demo-95472999b0/50dc6c495c0c9188"),
		SSLCipher: []byte("ECDHE-RSA-AES128-GCM-SHA256"), SSLProtocol: []byte("TLSv1.2"),
		TargetGroupARN:  []byte("arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/k8s-demo-api-edb70a94b9/73e2d6bc24d8a067"),
		DomainName:      []byte("api.example.com"),
		ChosenCertARN:   []byte("arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012"),
		ActionsExecuted: []byte("forward"),
	}
	return g
}

func (g *gen) newTarget() string {
	g.pods++
	return "10.0." + strconv.Itoa(g.pods%4) + "." + strconv.Itoa(g.pods%250+2) + ":1325"
}

// next appends one line. Every 10 minutes of log time one target is replaced:
// the old one drains for 60 s, and in its last 20 s its process is gone.
func (g *gen) next(b []byte) []byte {
	g.t = g.t.Add(g.step + time.Duration(g.rng.Int64N(int64(g.step))) - g.step/2)
	sec := g.t.Unix()
	if sec%600 == 0 && g.t.Nanosecond() < int(2*g.step) {
		old := g.live[0]
		g.live = append(g.live[1:], g.newTarget())
		g.drain = []string{old}
	}
	if sec%600 == 60 {
		g.drain = nil
	}
	e := &g.e
	target := g.live[g.rng.IntN(len(g.live))]
	draining := len(g.drain) > 0 && g.rng.IntN(20) == 0
	if draining {
		target = g.drain[0]
	}
	e.Client = fmt.Appendf(e.Client[:0], "198.51.100.%d:%d", g.rng.IntN(250)+1, 1024+g.rng.IntN(60000))
	e.Target = append(e.Target[:0], target...)
	e.TargetPortList = append(e.TargetPortList[:0], target...)
	path := paths[g.rng.IntN(len(paths))]
	e.Request = fmt.Appendf(e.Request[:0], "%s https://api.example.com:443%s HTTP/2.0", methods[g.rng.IntN(len(methods))], path)
	e.UserAgent = append(e.UserAgent[:0], agents[g.rng.IntN(len(agents))]...)
	e.TraceID = fmt.Appendf(e.TraceID[:0], "Root=1-%08x-%012x%012x", sec, g.rng.Uint64()&0xffffffffffff, g.rng.Uint64()&0xffffffffffff)
	e.ConnTraceID = fmt.Appendf(e.ConnTraceID[:0], "TID_%016x", g.rng.Uint64())
	e.MatchedRulePriority = 1
	e.ReceivedBytes = int64(40 + g.rng.IntN(400))
	tp := time.Duration(g.rng.ExpFloat64() * float64(20*time.Millisecond)).Truncate(time.Millisecond)
	gone := draining && sec%600 >= 40
	switch {
	case gone && g.rng.IntN(2) == 0: // refused/reset by an exited pod: 502
		e.RequestProcessingTime, e.TargetProcessingTime, e.ResponseProcessingTime = -1, -1, -1
		e.ELBStatusCode, e.TargetStatusCode, e.SentBytes = 502, 0, 277
		e.TargetStatusCodeList = e.TargetStatusCodeList[:0]
	case gone: // no answer: 504 after the 10 s target timeout
		e.RequestProcessingTime, e.TargetProcessingTime, e.ResponseProcessingTime = -1, -1, -1
		e.ELBStatusCode, e.TargetStatusCode, e.SentBytes = 504, 0, 202
		e.TargetStatusCodeList = e.TargetStatusCodeList[:0]
		tp = 10 * time.Second
	default:
		e.RequestProcessingTime, e.TargetProcessingTime, e.ResponseProcessingTime = 0, tp, 0
		e.ELBStatusCode = 200
		if g.rng.IntN(200) == 0 {
			e.ELBStatusCode = 404
		}
		e.TargetStatusCode, e.SentBytes = e.ELBStatusCode, int64(200+g.rng.IntN(4000))
		e.TargetStatusCodeList = strconv.AppendInt(e.TargetStatusCodeList[:0], int64(e.ELBStatusCode), 10)
	}
	e.Time = g.t
	e.RequestCreationTime = g.t.Add(-tp).Truncate(time.Millisecond)
	return e.Append(b)
}
