package probe

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// TraceHeader is the header the ALB logs as trace_id; the lab's stand-in does too.
const TraceHeader = "X-Amzn-Trace-Id"

// traceIDs makes X-Amzn-Trace-Id values in the AWS format
// "Root=1-<8 hex epoch seconds>-<24 hex>", the 24 hex digits being an 8-hex
// run id and a 16-hex sequence number: unique per run (the workers of one
// run share the run id and never share a sequence number, see Shard), and
// a record joins its access-log line by string equality.
type traceIDs struct{ run uint32 }

// newTraceIDs uses run as the run id, or a random one when it is 0.
func newTraceIDs(run uint32) traceIDs {
	if run != 0 {
		return traceIDs{run: run}
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return traceIDs{run: binary.BigEndian.Uint32(b[:])}
}

const hexDigits = "0123456789abcdef"

func putHex(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

func (t traceIDs) id(at time.Time, seq uint64) string {
	var b [7 + 8 + 1 + 24]byte
	copy(b[:], "Root=1-")
	putHex(b[7:15], uint64(at.Unix()))
	b[15] = '-'
	putHex(b[16:24], uint64(t.run))
	putHex(b[24:40], seq)
	return string(b[:])
}
