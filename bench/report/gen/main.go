// Command gen writes the evidence of a prober run across several rollouts,
// for the `rollsafe report` benchmark (bench/report/run.sh), into -dir:
//
//   - probe.ndjson: -n request records as `rollsafe probe --record` writes
//     them (open model at -rate req/s), interleaved in time order with the
//     pod and rollout records the kube observer would write (Source "kube")
//     and the target records the ELBv2 poller would write (Source "elbv2",
//     one poll every 2 s, Attrs["prev_poll"]);
//   - alb.log: the ALB's access log of the same requests, one line each,
//     joined to its request record by trace id, with the ALB's clock 300 ms
//     ahead of the prober's.
//
// The story is the seeds' gate-only rollout: three replicas, readiness gate
// on, no preStop, the app exiting at once on SIGTERM. Each old pod's target
// is deregistered as the pod terminates, but every ALB node keeps routing to
// it until it learns (0.1-0.9 s later; one node per replacement takes
// 1-2.4 s). Requests it routes there after the process exited fail with 502;
// after the pod is deleted its IP no longer answers and the ALB gives up with
// a 504 after 10 s. About 0.5% of requests fail at the defaults.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/rollsafe/rollsafe/defaults"
	"github.com/rollsafe/rollsafe/observe/accesslog"
	"github.com/rollsafe/rollsafe/timeline"
)

// Settings of the simulated cluster and load balancer.
const (
	replicas     = 3
	lbNodes      = 3
	pollEvery    = 2 * time.Second // ELBv2 DescribeTargetHealth poll interval
	watchLag     = 40 * time.Millisecond
	clockSkew    = 300 * time.Millisecond // the ALB's clock ahead of the prober's
	deregDelay   = 30 * time.Second
	connTimeout  = defaults.ConnectTimeout // the ALB's 504 when a target never answers
	targetPort   = 1325
	namespace    = "demo"
	deployment   = "jiameng-api"
	gateType     = defaults.GatePrefix + "k8s-demo-jiamenga-edb70a94b9"
	tgARN        = "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/k8s-demo-jiamenga-edb70a94b9/73e2d6bc24d8a067"
	elbName      = "app/k8s-demo-95472999b0/50dc6c495c0c9188"
	requestLine  = "GET http://api.example.com:80/ HTTP/1.1"
	userAgent    = "rollsafe-probe"
	probeClient  = "203.0.113.10"
	probeConns   = 16
	okBytes      = 27  // the demo API's answer
	errBytes502  = 122 // the ALB's 502 page
	errBytes504  = 132 // the ALB's 504 page
	receivedSize = 96
)

func main() {
	dir := flag.String("dir", ".", "write probe.ndjson and alb.log here")
	n := flag.Int("n", 1_000_000, "request records (and access-log lines)")
	rate := flag.Int("rate", 2000, "requests per second")
	rollouts := flag.Int("rollouts", 3, "rollouts, spread evenly over the run")
	seed := flag.Uint64("seed", 1, "random seed (same seed, same files)")
	flag.Parse()
	if *n <= 0 || *rate <= 0 || *rollouts < 0 {
		fmt.Fprintln(os.Stderr, "gen: -n and -rate must be positive, -rollouts not negative")
		os.Exit(2)
	}
	if err := run(*dir, *n, *rate, *rollouts, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// pod is one replica's whole life, decided up front. Zero times never happened.
type pod struct {
	name, ip, target, version, node string

	created, running, containerReady, registered, healthy, ready time.Time
	terminating, exited, exitSeen, deregistered, deleted, gone   time.Time
	learn                                                        [lbNodes]time.Time // when each LB node stops routing to it
}

// routable says whether LB node i may send a request to p at t.
func (p *pod) routable(i int, t time.Time) bool {
	if p.healthy.IsZero() || t.Before(p.healthy) {
		return false
	}
	return p.deregistered.IsZero() || t.Before(p.learn[i])
}

type sim struct {
	rng    *rand.Rand
	start  time.Time
	pods   []*pod
	events []timeline.Record
	npods  int
}

func (s *sim) dur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

func (s *sim) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[s.rng.IntN(16)]
	}
	return string(b)
}

func (s *sim) newPod(version, rsHash string, created time.Time) *pod {
	s.npods++
	const alnum = "bcdfghjklmnpqrstvwxz2456789" // the apiserver's name suffix alphabet
	suffix := make([]byte, 5)
	for i := range suffix {
		suffix[i] = alnum[s.rng.IntN(len(alnum))]
	}
	ip := fmt.Sprintf("10.0.%d.%d", 1+s.npods%3, 10+s.npods)
	p := &pod{
		name: deployment + "-" + rsHash + "-" + string(suffix), ip: ip,
		target: ip + ":" + strconv.Itoa(targetPort), version: version,
		node: fmt.Sprintf("ip-10-0-%d-%d.us-east-2.compute.internal", 1+s.npods%3, 100+s.npods%3), created: created,
	}
	s.pods = append(s.pods, p)
	return p
}

// startPod plays a new pod from creation to Ready (readiness gate on).
func (s *sim) startPod(p *pod) {
	p.running = p.created.Add(s.dur(800*time.Millisecond, 1500*time.Millisecond))
	p.containerReady = p.running.Add(s.dur(500*time.Millisecond, 1000*time.Millisecond))
	p.registered = p.containerReady.Add(s.dur(200*time.Millisecond, 600*time.Millisecond))
	p.healthy = p.registered.Add(s.dur(9*time.Second, 11*time.Second)) // 2 health checks 5 s apart
	p.ready = p.healthy.Add(s.dur(300*time.Millisecond, 1500*time.Millisecond))
}

// stopPod plays an old pod's end: deleted at t, no preStop, the app exits
// at once on SIGTERM, the controller deregisters its target, the LB nodes
// learn one by one, one of them late.
func (s *sim) stopPod(p *pod, t time.Time) {
	p.terminating = t
	p.exited = t.Add(s.dur(20*time.Millisecond, 80*time.Millisecond))
	p.exitSeen = p.exited.Add(s.dur(300*time.Millisecond, 700*time.Millisecond))
	p.deregistered = t.Add(s.dur(150*time.Millisecond, 400*time.Millisecond))
	p.deleted = p.exited.Add(s.dur(1800*time.Millisecond, 2200*time.Millisecond))
	p.gone = p.deregistered.Add(deregDelay)
	slow := s.rng.IntN(lbNodes)
	for i := range p.learn {
		if i == slow {
			p.learn[i] = p.deregistered.Add(s.dur(time.Second, 2400*time.Millisecond))
		} else {
			p.learn[i] = p.deregistered.Add(s.dur(100*time.Millisecond, 900*time.Millisecond))
		}
	}
}

// plan decides every pod's life: replicas from the start, then a rolling
// update (maxSurge 1, maxUnavailable 0) at each rollout time.
func (s *sim) plan(runFor time.Duration, rollouts int) {
	version := 1
	rsHash := s.hex(10)
	var live []*pod
	for range replicas {
		p := s.newPod("v1", rsHash, s.start.Add(-time.Minute))
		s.startPod(p)
		live = append(live, p)
	}
	s.rollout(s.start.Add(-2*time.Second+watchLag), "Complete", "1", "initial") // the observer's first list
	done := s.start
	for r := 1; r <= rollouts; r++ {
		version++
		// Evenly spread, but never before the previous rollout is over (a
		// short run has its later rollouts after the traffic).
		at := s.start.Add(runFor * time.Duration(r) / time.Duration(rollouts+1))
		if at.Before(done) {
			at = done.Add(5 * time.Second)
		}
		rev := strconv.Itoa(version)
		s.rollout(at.Add(watchLag), "Progressing", rev, "state Complete→Progressing")
		rsHash = s.hex(10)
		t := at.Add(s.dur(50*time.Millisecond, 200*time.Millisecond))
		var next []*pod
		for _, old := range live {
			p := s.newPod("v"+rev, rsHash, t)
			s.startPod(p)
			next = append(next, p)
			t = p.ready.Add(s.dur(50*time.Millisecond, 150*time.Millisecond))
			s.stopPod(old, t)
		}
		last := live[len(live)-1]
		s.rollout(last.deleted.Add(watchLag), "Complete", rev, "state Progressing→Complete")
		done = last.gone
		live = next
	}
	for _, p := range s.pods {
		s.podEvents(p)
	}
	s.targetEvents()
	slices.SortStableFunc(s.events, func(a, b timeline.Record) int { return a.Time.Compare(b.Time) })
}

func (s *sim) rollout(at time.Time, state, rev, reason string) {
	s.events = append(s.events, timeline.Record{
		Kind: timeline.KindRollout, Time: at, Source: "kube", Object: deployment, State: state, Reason: reason,
		Attrs: map[string]string{"resource": "deployment", "namespace": namespace, "revision": rev, "replicas": strconv.Itoa(replicas)},
	})
}

// podEvents writes what the kube observer would have seen of p.
func (s *sim) podEvents(p *pod) {
	attrs := func(phase, container, ready, gate string) map[string]string {
		a := map[string]string{
			"namespace": namespace, "resource": "pod", "phase": phase, "ip": p.ip, "node": p.node,
			"grace_seconds": "30", "gates": gateType, "container/app": container,
			"cond/Ready": ready, "cond/" + gateType: gate,
		}
		return a
	}
	add := func(at time.Time, state, reason string, a map[string]string) {
		s.events = append(s.events, timeline.Record{Kind: timeline.KindPod, Time: at.Add(watchLag), Source: "kube",
			Object: p.name, State: state, Reason: reason, Attrs: a})
	}
	if p.created.Before(s.start) {
		add(s.start.Add(-2*time.Second), "Ready", "initial", attrs("Running", "running+ready", "True", "True"))
	} else {
		add(p.created, "Pending", "added", attrs("Pending", "waiting:ContainerCreating", "False", "Absent"))
		add(p.running, "Running", "state Pending→Running; container/app waiting:ContainerCreating→running",
			attrs("Running", "running", "False", "Absent"))
		add(p.containerReady, "Running", "container/app running→running+ready",
			attrs("Running", "running+ready", "False", "False"))
		add(p.ready, "Ready", "state Running→Ready; cond/Ready False→True; cond/"+gateType+" False→True",
			attrs("Running", "running+ready", "True", "True"))
	}
	if p.terminating.IsZero() {
		return
	}
	deleting := func(a map[string]string) map[string]string {
		a["deletion_timestamp"] = p.terminating.Add(30 * time.Second).UTC().Format(time.RFC3339)
		a["deletion_grace_seconds"] = "30"
		return a
	}
	add(p.terminating, "Terminating", "state Ready→Terminating", deleting(attrs("Running", "running+ready", "True", "True")))
	a := deleting(attrs("Running", "terminated:Error:2", "False", "True"))
	add(p.exitSeen, "Terminating", "container/app running+ready→terminated:Error:2; cond/Ready True→False", a)
	add(p.deleted, "Deleted", "deleted", a)
}

// targetEvents writes what the ELBv2 poller would have seen: a record per
// target whose state changed since the previous poll, at the poll's time.
func (s *sim) targetEvents() {
	type change struct {
		at            time.Time
		state, reason string
		gone          bool
	}
	first := s.start.Add(-2 * time.Second)
	poll := func(t time.Time) (at, prev time.Time) { // the first poll at or after t
		if !t.After(first) {
			return first, time.Time{}
		}
		k := (t.Sub(first) + pollEvery - 1) / pollEvery
		at = first.Add(k * pollEvery)
		return at, at.Add(-pollEvery)
	}
	for _, p := range s.pods {
		var cs []change
		if p.created.After(s.start) {
			cs = append(cs, change{at: p.registered, state: "initial", reason: "Elb.RegistrationInProgress"})
		}
		cs = append(cs, change{at: p.healthy, state: "healthy"})
		if !p.deregistered.IsZero() {
			cs = append(cs, change{at: p.deregistered, state: "draining", reason: "Target.DeregistrationInProgress"},
				change{at: p.gone, state: "unused", reason: "Target.NotRegistered", gone: true})
		}
		last := ""
		for i, c := range cs {
			at, prev := poll(c.at)
			if i+1 < len(cs) {
				if nextAt, _ := poll(cs[i+1].at); nextAt.Equal(at) {
					continue // changed again before the poll saw it
				}
			}
			if c.state == last {
				continue
			}
			last = c.state
			a := map[string]string{"target_group": tgARN, "availability_zone": "us-east-2a"}
			if !prev.IsZero() {
				a["prev_poll"] = prev.UTC().Format(time.RFC3339Nano)
			}
			if c.gone {
				a["gone"] = "true"
			}
			s.events = append(s.events, timeline.Record{Kind: timeline.KindTarget, Time: at, Source: "elbv2",
				Object: p.target, State: c.state, Reason: c.reason, Attrs: a})
		}
	}
}

type counts struct{ ok, e502, e504 int }

func run(dir string, n, rate, rollouts int, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	s := &sim{rng: rand.New(rand.NewPCG(seed, 0x726f6c6c)), start: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)}
	step := time.Second / time.Duration(rate)
	runFor := time.Duration(n) * step
	s.plan(runFor, rollouts)

	pf, err := os.Create(filepath.Join(dir, "probe.ndjson"))
	if err != nil {
		return err
	}
	defer pf.Close()
	lf, err := os.Create(filepath.Join(dir, "alb.log"))
	if err != nil {
		return err
	}
	defer lf.Close()
	pw := bufio.NewWriterSize(pf, 1<<20)
	lw := bufio.NewWriterSize(lf, 1<<20)

	runID := s.rng.Uint32()
	e := accesslog.Entry{
		Type: []byte("http"), ELB: []byte(elbName), Request: []byte(requestLine), UserAgent: []byte(userAgent),
		TargetGroupARN: []byte(tgARN), MatchedRulePriority: 1, ActionsExecuted: []byte("forward"),
		ReceivedBytes: receivedSize,
	}
	var (
		line, js, client []byte
		traceBuf         [40]byte
		c                counts
		next             int // next cluster event to write
	)
	writeEvents := func(until time.Time) error {
		for ; next < len(s.events) && !s.events[next].Time.After(until); next++ {
			b, err := s.events[next].AppendJSON(js[:0])
			if err != nil {
				return err
			}
			js = append(b, '\n')
			if _, err := pw.Write(js); err != nil {
				return err
			}
		}
		return nil
	}
	var eligible []*pod
	for i := range n {
		seq := uint64(i + 1)
		sched := s.start.Add(time.Duration(i) * step)
		sent := sched.Add(time.Duration(20_000 + s.rng.IntN(180_000)))
		if err := writeEvents(sent); err != nil {
			return err
		}
		node := s.rng.IntN(lbNodes)
		eligible = eligible[:0]
		for _, p := range s.pods {
			if p.routable(node, sent) {
				eligible = append(eligible, p)
			}
		}
		if len(eligible) == 0 {
			return fmt.Errorf("no routable target at %v: the plan is wrong", sent)
		}
		p := eligible[s.rng.IntN(len(eligible))]
		conn := s.rng.IntN(probeConns)
		received := sent.Add(time.Duration(100_000 + s.rng.IntN(200_000)))

		rec := timeline.Record{Kind: timeline.KindRequest, Source: "probe", Seq: seq, Scheduled: sched, Time: sent}
		putTrace(&traceBuf, sent, runID, seq)
		rec.TraceID = string(traceBuf[:])
		var serve time.Duration // LB received → LB responded
		switch {
		case !p.exited.IsZero() && !sent.Before(p.deleted): // the IP is gone: no SYN-ACK
			serve = connTimeout + time.Duration(s.rng.IntN(2_000_000))
			rec.Status, rec.Class, rec.Bytes = 504, timeline.ClassHTTP504, errBytes504
			e.ELBStatusCode, e.TargetStatusCode, e.SentBytes = 504, 0, errBytes504
			e.RequestProcessingTime, e.TargetProcessingTime, e.ResponseProcessingTime = accesslog.NoTime, accesslog.NoTime, accesslog.NoTime
			e.TargetStatusCodeList = e.TargetStatusCodeList[:0]
			c.e504++
		case !p.exited.IsZero() && !sent.Before(p.exited): // the process is gone: refused
			serve = time.Duration(300_000 + s.rng.IntN(1_500_000))
			rec.Status, rec.Class, rec.Bytes = 502, timeline.ClassHTTP502, errBytes502
			e.ELBStatusCode, e.TargetStatusCode, e.SentBytes = 502, 0, errBytes502
			e.RequestProcessingTime, e.TargetProcessingTime, e.ResponseProcessingTime = accesslog.NoTime, accesslog.NoTime, accesslog.NoTime
			e.TargetStatusCodeList = e.TargetStatusCodeList[:0]
			c.e502++
		default:
			app := time.Duration(500_000 + s.rng.ExpFloat64()*2_000_000)
			serve = app + time.Duration(50_000+s.rng.IntN(100_000))
			rec.Status, rec.Class, rec.Bytes = 200, timeline.ClassOK, okBytes
			rec.Replica, rec.Version = p.name, p.version
			e.ELBStatusCode, e.TargetStatusCode, e.SentBytes = 200, 200, okBytes+190
			e.RequestProcessingTime, e.TargetProcessingTime, e.ResponseProcessingTime = 0, app, 0
			e.TargetStatusCodeList = append(e.TargetStatusCodeList[:0], "200"...)
			c.ok++
		}
		responded := received.Add(serve)
		rec.Latency = responded.Add(time.Duration(100_000 + s.rng.IntN(200_000))).Sub(sched)

		b, err := rec.AppendJSON(js[:0])
		if err != nil {
			return err
		}
		js = append(b, '\n')
		if _, err := pw.Write(js); err != nil {
			return err
		}

		client = strconv.AppendInt(append(client[:0], probeClient+":"...), int64(40000+conn), 10)
		e.Client = client
		e.Target = append(e.Target[:0], p.target...)
		e.TargetPortList = e.Target
		e.TraceID = traceBuf[:]
		e.RequestCreationTime = received.Add(clockSkew)
		e.Time = responded.Add(clockSkew)
		line = append(e.Append(line[:0]), '\n')
		if _, err := lw.Write(line); err != nil {
			return err
		}
	}
	if err := writeEvents(s.start.Add(24 * time.Hour)); err != nil {
		return err
	}
	for _, w := range []*bufio.Writer{pw, lw} {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	for _, f := range []*os.File{pf, lf} {
		if err := f.Close(); err != nil {
			return err
		}
	}
	failed := c.e502 + c.e504
	fmt.Fprintf(os.Stderr, "gen: %d requests over %v, %d rollouts, %d pods, %d cluster records; failed %d (%.2f%%): 502 %d, 504 %d\n",
		n, runFor, rollouts, len(s.pods), len(s.events), failed, 100*float64(failed)/float64(n), c.e502, c.e504)
	return nil
}

// putTrace writes the prober's X-Amzn-Trace-Id: Root=1-<8 hex epoch>-<8 hex run><16 hex seq>.
func putTrace(b *[40]byte, at time.Time, run uint32, seq uint64) {
	copy(b[:], "Root=1-")
	putHex(b[7:15], uint64(at.Unix()))
	b[15] = '-'
	putHex(b[16:24], uint64(run))
	putHex(b[24:40], seq)
}

func putHex(dst []byte, v uint64) {
	const digits = "0123456789abcdef"
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = digits[v&0xf]
		v >>= 4
	}
}
