package timeline

import "sync"

// Sink is where a producer sends its records — the prober, the kubelet
// and ALB stand-ins, the target-health poller (observe/elbv2), the lab,
// Read — and what every consumer is: a file (Writer.Write), a lab run, a
// test's collector. (observe/kube hands its records over a channel to the
// caller, who sends them on to a Sink.)
//
// The record belongs to the sink once passed: the producer does not touch
// it again, the sink may keep or change it.
//
// An error means the record was not recorded: the recording now has a
// hole and would mislead. The producer sends nothing more and fails with
// the error; one that cannot return it where it happens (a pod's event
// loop, the ALB stand-in's health checkers and request path) keeps the
// first one in a Latch and fails with it when next asked (its Err, Close).
//
// A producer documents how it calls its sink: probe.Run and Read from one
// goroutine, a kubelet pod from one goroutine of its own, the ALB stand-in
// from many at once. A sink given to a producer that calls it concurrently,
// or shared between producers (the lab shares one between all of them),
// must be safe for concurrent use; Writer.Write is.
type Sink func(*Record) error

// Latch passes records on to a Sink until the first error, keeps that
// error, and refuses every later record with it: records sent after a hole
// must not look like a whole recording. It is for producers that cannot
// return a sink's error to whoever runs them. Safe for concurrent use if
// its sink is; a nil sink accepts every record.
type Latch struct {
	sink Sink
	mu   sync.Mutex
	err  error
}

// NewLatch returns a Latch in front of sink.
func NewLatch(sink Sink) *Latch { return &Latch{sink: sink} }

// Write passes r to the sink unless the latch has failed; it is a Sink.
func (l *Latch) Write(r *Record) error {
	if err := l.Err(); err != nil {
		return err
	}
	if l.sink == nil {
		return nil
	}
	if err := l.sink(r); err != nil {
		l.Fail(err)
		return l.Err()
	}
	return nil
}

// Fail fails the latch with err unless it has failed already: a producer
// whose other recording (an access log) broke says so here.
func (l *Latch) Fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
}

// Err is the first error, or nil.
func (l *Latch) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
