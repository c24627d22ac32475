package timeline

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends r as one JSON object, byte for byte what encoding/json
// (with SetEscapeHTML(false)) writes, without its reflection: the prober
// writes a record per request, and at tens of thousands of requests a
// second the generic encoder was its main cost. Records the fast path does
// not cover (Attrs, or times outside years 0-9999) go through
// encoding/json. TestAppendJSONMatchesEncodingJSON holds the two equal.
func (r *Record) AppendJSON(b []byte) ([]byte, error) {
	if len(r.Attrs) > 0 || !fastTime(r.Time) || !r.Scheduled.IsZero() && !fastTime(r.Scheduled) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			return b, err
		}
		return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...), nil
	}
	b = append(b, `{"kind":`...)
	b = appendString(b, string(r.Kind))
	b = append(b, `,"time":"`...)
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendStringField(b, `,"source":`, r.Source)
	b = appendStringField(b, `,"scenario":`, r.Scenario)
	if r.Seq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, r.Seq, 10)
	}
	b = appendStringField(b, `,"method":`, r.Method)
	if !r.Scheduled.IsZero() {
		b = append(b, `,"scheduled":"`...)
		b = r.Scheduled.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if r.Latency != 0 {
		b = append(b, `,"latency_ns":`...)
		b = strconv.AppendInt(b, int64(r.Latency), 10)
	}
	if r.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(r.Status), 10)
	}
	b = appendStringField(b, `,"class":`, string(r.Class))
	if r.Bytes != 0 {
		b = append(b, `,"bytes":`...)
		b = strconv.AppendInt(b, r.Bytes, 10)
	}
	b = appendStringField(b, `,"replica":`, r.Replica)
	b = appendStringField(b, `,"version":`, r.Version)
	b = appendStringField(b, `,"error":`, r.Error)
	b = appendStringField(b, `,"trace_id":`, r.TraceID)
	b = appendStringField(b, `,"object":`, r.Object)
	b = appendStringField(b, `,"state":`, r.State)
	b = appendStringField(b, `,"reason":`, r.Reason)
	b = appendStringField(b, `,"cause":`, string(r.Cause))
	return append(b, '}'), nil
}

func fastTime(t time.Time) bool { y := t.Year(); return y >= 0 && y <= 9999 }

func appendStringField(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	return appendString(append(b, name...), v)
}

// appendString quotes s as encoding/json does with HTML escaping off:
// ", \ and control characters escaped, invalid UTF-8 replaced by U+FFFD,
// U+2028 and U+2029 escaped (they end lines in JavaScript).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
