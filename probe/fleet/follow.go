package fleet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rollsafe/rollsafe/probe"
	"github.com/rollsafe/rollsafe/timeline"
)

// The worker protocol: a worker writes one NDJSON timeline record per line
// to stdout — its request records as probe.Run completes them, then one
// last event (EndRecord) saying how many requests it sent. Anything else on
// its log (its stderr, which a container log interleaves) is a message for
// the user, never a record: a worker writes no JSON there.

// EndReason marks a worker's last record.
const EndReason = "probe worker done"

// EndRecord is the last line a worker writes: its index, how many
// requests it sent, and whether it was stopped (SIGTERM) before its
// schedule ended. Without it, or with a count that differs from the
// records that arrived, the worker's recording has a hole.
func EndRecord(index int, sum *probe.Summary) *timeline.Record {
	return &timeline.Record{Kind: timeline.KindEvent, Time: time.Now(), Source: probe.DefaultSource,
		Reason: EndReason, Attrs: map[string]string{
			"worker": strconv.Itoa(index), "requests": strconv.FormatUint(sum.Requests, 10),
			"interrupted": strconv.FormatBool(sum.Interrupted)}}
}

// maxLine bounds one log line: a record is a few hundred bytes; a longer
// line is not one of ours.
const maxLine = 1 << 20

// line is what a follower hands the merger: a record, a message, or the
// end of the stream.
type line struct {
	pod   string
	index int
	rec   *timeline.Record
	msg   string
	end   *streamEnd
}

type streamEnd struct {
	err error
	cut bool // the last line had no newline: the worker died writing it
}

// follow streams one pod's log into out until it ends (the container
// exited) or ctx is done.
func follow(ctx context.Context, cs kubernetes.Interface, ns, pod string, index int, out chan<- line) {
	end := &streamEnd{}
	defer func() { out <- line{pod: pod, index: index, end: end} }()
	s, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: containerName, Follow: true}).Stream(ctx)
	if err != nil {
		end.err = fmt.Errorf("following the log: %w", err)
		return
	}
	defer s.Close()
	br := bufio.NewReaderSize(s, 64<<10)
	for {
		b, err := readLine(br)
		if len(b) > 0 && err == nil {
			out <- parse(pod, index, b)
		}
		switch {
		case errors.Is(err, io.EOF):
			end.cut = len(b) > 0
			return
		case err != nil:
			end.err = fmt.Errorf("reading the log: %w", err)
			return
		}
	}
}

// readLine returns the next line without its newline; at the end of the
// stream, what is left (a cut line) with io.EOF.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		b, err := br.ReadSlice('\n')
		buf = append(buf, b...)
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull) && len(buf) < maxLine:
			continue
		case errors.Is(err, bufio.ErrBufferFull):
			return buf, fmt.Errorf("a line longer than %d bytes", maxLine)
		default:
			return buf, err
		}
	}
}

func parse(pod string, index int, b []byte) line {
	if !bytes.HasPrefix(b, []byte("{")) {
		return line{pod: pod, index: index, msg: string(b)}
	}
	r := &timeline.Record{}
	if err := r.DecodeJSON(b); err != nil || r.Kind == "" {
		return line{pod: pod, index: index, msg: "not a record: " + string(b)}
	}
	return line{pod: pod, index: index, rec: r}
}
