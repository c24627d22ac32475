package accesslog

import (
	"strconv"
	"time"
)

// Append appends e as one access-log line, without the newline, exactly as
// the ALB writes it: a parsed line comes back byte for byte; an Entry built
// by hand comes out in AWS's current format with every known field.
func (e *Entry) Append(b []byte) []byte {
	n := int(e.layout.fields)
	if n == 0 {
		n = NumFields
	}
	for fi := range n {
		if fi > 0 {
			b = append(b, ' ')
		}
		b = e.appendField(b, fi)
	}
	if len(e.Extra) > 0 {
		b = append(b, ' ')
		b = append(b, e.Extra...)
	}
	return b
}

// String returns the line, for debugging and tests.
func (e *Entry) String() string { return string(e.Append(nil)) }

func (e *Entry) appendField(b []byte, fi int) []byte {
	switch fi {
	case FieldTime:
		return e.appendTime(b, e.Time, precTime)
	case FieldRequestCreationTime:
		return e.appendTime(b, e.RequestCreationTime, precCreation)
	case FieldRequestProcessingTime:
		return e.appendDuration(b, e.RequestProcessingTime, precReq)
	case FieldTargetProcessingTime:
		return e.appendDuration(b, e.TargetProcessingTime, precTarget)
	case FieldResponseProcessingTime:
		return e.appendDuration(b, e.ResponseProcessingTime, precResp)
	case FieldELBStatusCode:
		return appendCode(b, int64(e.ELBStatusCode), 0)
	case FieldTargetStatusCode:
		return appendCode(b, int64(e.TargetStatusCode), 0)
	case FieldReceivedBytes:
		return appendCode(b, e.ReceivedBytes, -1)
	case FieldSentBytes:
		return appendCode(b, e.SentBytes, -1)
	case FieldMatchedRulePriority:
		return appendCode(b, int64(e.MatchedRulePriority), RuleDash)
	}
	quoted := (quotedFields^e.layout.quoteFlip)>>fi&1 == 1
	v := *e.textField(fi)
	if quoted {
		b = append(b, '"')
	}
	switch {
	case len(v) > 0:
		b = append(b, v...)
	case quoted && e.layout.emptyQuoted>>fi&1 == 1:
	default:
		b = append(b, '-')
	}
	if quoted {
		b = append(b, '"')
	}
	return b
}

// appendCode writes n, or "-" when n is the field's dash value.
func appendCode(b []byte, n, dash int64) []byte {
	if n == dash {
		return append(b, '-')
	}
	return strconv.AppendInt(b, n, 10)
}

func (e *Entry) digits(pi, def int) int {
	if p := e.layout.prec[pi]; p != 0 {
		return int(p) - 1
	}
	return def
}

func (e *Entry) appendDuration(b []byte, d time.Duration, pi int) []byte {
	if d < 0 {
		return append(b, '-', '1')
	}
	b = strconv.AppendInt(b, int64(d/time.Second), 10)
	return appendFraction(b, int64(d%time.Second), e.digits(pi, defaultDurationDigits))
}

// appendFraction writes ".ddd" with n digits of ns (truncated), or nothing for n == 0.
func appendFraction(b []byte, ns int64, n int) []byte {
	if n == 0 {
		return b
	}
	for range 9 - n {
		ns /= 10
	}
	b = append(b, '.')
	var buf [9]byte
	for i := n - 1; i >= 0; i-- {
		buf[i] = byte('0' + ns%10)
		ns /= 10
	}
	return append(b, buf[:n]...)
}

func (e *Entry) appendTime(b []byte, t time.Time, pi int) []byte {
	if t.IsZero() {
		return append(b, '-')
	}
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b = append2(append2(b, y/100), y%100)
	b = append2(append(b, '-'), int(mo))
	b = append2(append(b, '-'), d)
	b = append2(append(b, 'T'), h)
	b = append2(append(b, ':'), mi)
	b = append2(append(b, ':'), s)
	b = appendFraction(b, int64(t.Nanosecond()), e.digits(pi, defaultTimeDigits))
	return append(b, 'Z')
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }
