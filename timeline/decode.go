package timeline

import (
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/rollsafe/rollsafe/timeline/civil"
)

// DecodeJSON sets *r to the record in b, one JSON object: always exactly
// what json.Unmarshal(b, r) gives for a zero r (the same fields, the same
// times and locations, the same error), without its reflection. Reading a
// timeline is mostly decoding request records, and encoding/json was
// nearly all of that cost.
//
// The fast path takes the objects AppendJSON and encoding/json write: no
// whitespace, known keys spelt exactly, each once, strings (with any JSON
// escape), integers without fraction or exponent, an RFC 3339 time. Any
// other line, valid or not (spaces, unknown or differently-cased keys,
// nulls, duplicates, 1e3, syntax errors), goes to encoding/json as it is.
// Unlike json.Unmarshal, DecodeJSON first clears *r. It does not require
// a Kind; Read does.
func (r *Record) DecodeJSON(b []byte) error {
	d := getDecoder()
	err := d.decode(b, r)
	putDecoder(d)
	return err
}

// fallbacks counts the lines the fast path handed to encoding/json (tests
// and benchmarks look at it).
var fallbacks atomic.Int64

var decoderPool = sync.Pool{New: func() any { return newDecoder() }}

func getDecoder() *decoder { return decoderPool.Get().(*decoder) }

func putDecoder(d *decoder) {
	if cap(d.scratch) > 64<<10 {
		d.scratch = nil // a long line's: let it go
	}
	decoderPool.Put(d)
}

// internSlots is the size of a decoder's string cache: kinds, sources,
// classes, replicas, versions, states, attr keys repeat across millions of
// records, and a hit costs a hash instead of an allocation.
const (
	internSlots = 1 << 10
	internMax   = 128 // longer strings are not worth caching
)

// decoder decodes records with the fast path; it is not safe for
// concurrent use (Read gives each worker its own).
type decoder struct {
	seed    maphash.Seed
	cache   [internSlots]string
	last    [fAttrs + 1]string // each field's last value
	tkey    string             // "2006-01-02T15:04" of the last time parsed
	tmin    int64              // its Unix time
	scratch []byte             // unescaped string being built
	slab    []Record           // where keep puts request records
}

func newDecoder() *decoder { return &decoder{seed: maphash.MakeSeed()} }

func (d *decoder) decode(b []byte, r *Record) error {
	*r = Record{}
	return d.decodeZero(b, r)
}

// decodeZero is decode into a zero *r.
func (d *decoder) decodeZero(b []byte, r *Record) error {
	if d.fast(b, r) {
		return nil
	}
	fallbacks.Add(1)
	*r = Record{}
	return json.Unmarshal(b, r)
}

// The fields, as bits of the set already seen (a duplicate goes to
// encoding/json).
const (
	fKind = iota
	fTime
	fSource
	fScenario
	fSeq
	fMethod
	fScheduled
	fLatency
	fStatus
	fClass
	fBytes
	fReplica
	fVersion
	fError
	fTraceID
	fObject
	fState
	fReason
	fCause
	fAttrs
)

// keyLits are the keys as they appear, by field.
var keyLits = [...]string{fKind: `"kind":`, fTime: `"time":`, fSource: `"source":`, fScenario: `"scenario":`,
	fSeq: `"seq":`, fMethod: `"method":`, fScheduled: `"scheduled":`, fLatency: `"latency_ns":`, fStatus: `"status":`, fClass: `"class":`,
	fBytes: `"bytes":`, fReplica: `"replica":`, fVersion: `"version":`, fError: `"error":`, fTraceID: `"trace_id":`,
	fObject: `"object":`, fState: `"state":`, fReason: `"reason":`, fCause: `"cause":`, fAttrs: `"attrs":`}

// fieldOf is the field a key names exactly, -1 for none.
func fieldOf(key []byte) int {
	for f, lit := range keyLits {
		if len(lit) == len(key)+3 && lit[1:len(lit)-2] == string(key) {
			return f
		}
	}
	return -1
}

// fast decodes b into r (zero on entry) if b is in the form the fast path
// knows, and reports whether it was. false means nothing about b's
// validity: encoding/json decides.
func (d *decoder) fast(b []byte, r *Record) bool {
	n := len(b)
	if n < 2 || b[0] != '{' || b[n-1] != '}' {
		return false
	}
	if n == 2 {
		return true // {}
	}
	var seen uint32
	i, f := 1, -1
	for {
		// "key": the fields come in AppendJSON's order (the order of the
		// f constants), so try the next ones first.
		next := -1
		for k := f + 1; k < len(keyLits); k++ {
			if lit := keyLits[k]; len(b)-i > len(lit) && string(b[i:i+len(lit)]) == lit {
				next = k
				i += len(lit)
				break
			}
		}
		if next < 0 { // any other order
			if i >= n || b[i] != '"' {
				return false
			}
			j := i + 1
			for j < n && b[j] != '"' && b[j] != '\\' {
				j++
			}
			if j+1 >= n || b[j] != '"' || b[j+1] != ':' {
				return false
			}
			if next = fieldOf(b[i+1 : j]); next < 0 {
				return false
			}
			i = j + 2
		}
		f = next
		if seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		var ok bool
		switch f {
		case fKind:
			var s string
			s, i, ok = d.str(b, i, f)
			r.Kind = Kind(s)
		case fTime:
			r.Time, i, ok = d.time(b, i)
		case fSource:
			r.Source, i, ok = d.str(b, i, f)
		case fScenario:
			r.Scenario, i, ok = d.str(b, i, f)
		case fSeq:
			r.Seq, i, ok = parseUint(b, i)
		case fMethod:
			r.Method, i, ok = d.str(b, i, f)
		case fScheduled:
			r.Scheduled, i, ok = d.time(b, i)
		case fLatency:
			var v int64
			v, i, ok = parseInt(b, i)
			r.Latency = time.Duration(v)
		case fStatus:
			var v int64
			v, i, ok = parseInt(b, i)
			r.Status = int(v)
			ok = ok && int64(r.Status) == v
		case fClass:
			var s string
			s, i, ok = d.str(b, i, f)
			r.Class = Class(s)
		case fBytes:
			r.Bytes, i, ok = parseInt(b, i)
		case fReplica:
			r.Replica, i, ok = d.str(b, i, f)
		case fVersion:
			r.Version, i, ok = d.str(b, i, f)
		case fError:
			r.Error, i, ok = d.str(b, i, f)
		case fTraceID:
			r.TraceID, i, ok = d.str(b, i, noIntern) // one per request: no repeats to find
		case fObject:
			r.Object, i, ok = d.str(b, i, f)
		case fState:
			r.State, i, ok = d.str(b, i, f)
		case fReason:
			r.Reason, i, ok = d.str(b, i, f)
		case fCause:
			var s string
			s, i, ok = d.str(b, i, f)
			r.Cause = Cause(s)
		case fAttrs:
			r.Attrs, i, ok = d.attrs(b, i)
		}
		if !ok || i >= n {
			return false
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return i == n-1
		default:
			return false
		}
	}
}

// attrs decodes {"k":"v",...} at b[i:]: a new map (empty for {}), as
// encoding/json makes one for a nil map field. A repeated key keeps its
// last value there too.
func (d *decoder) attrs(b []byte, i int) (map[string]string, int, bool) {
	if i >= len(b) || b[i] != '{' {
		return nil, i, false
	}
	i++
	m := make(map[string]string)
	if i < len(b) && b[i] == '}' {
		return m, i + 1, true
	}
	for {
		k, j, ok := d.str(b, i, attrKey)
		if !ok || j >= len(b) || b[j] != ':' {
			return nil, i, false
		}
		v, j, ok := d.str(b, j+1, attrValue)
		if !ok || j >= len(b) {
			return nil, i, false
		}
		m[k] = v
		i = j + 1
		switch b[j] {
		case ',':
		case '}':
			return m, i, true
		default:
			return nil, i, false
		}
	}
}

// plain marks the bytes a JSON string holds as they are: printable ASCII
// other than " and \.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainRun returns the index of the first byte at or after b[i] that is
// not plain, len(b) if none, eight bytes at a time.
func plainRun(b []byte, i int) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ (lo * '"')
		e := x ^ (lo * '\\')
		// A byte's high bit: it is '"', '\\', below 0x20, or 0x80 and up.
		// The lowest flagged byte is always a true one.
		if m := ((q-lo)&^q | (e-lo)&^e | (x-lo*0x20)&^x | x) & hi; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(b) && plain[b[i]] {
		i++
	}
	return i
}

// Which cache str uses: a field's last value (then the shared cache),
// or the shared cache alone, or none.
const (
	attrKey   = fAttrs + 1 + iota
	attrValue = fAttrs + 1 + iota
	noIntern  = -1
)

// str decodes the JSON string at b[i:] as encoding/json does: escapes
// resolved, a lone or broken surrogate and each byte of invalid UTF-8
// replaced by U+FFFD. It returns the string and the index after it.
func (d *decoder) str(b []byte, i int, cache int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", i, false
	}
	i++
	j := plainRun(b, i)
	if j < len(b) && b[j] == '"' {
		return d.intern(b[i:j], cache), j + 1, true
	}
	s := append(d.scratch[:0], b[i:j]...)
	for j < len(b) {
		c := b[j]
		switch {
		case c == '"':
			d.scratch = s
			return d.intern(s, cache), j + 1, true
		case c < 0x20:
			return "", j, false
		case c < utf8.RuneSelf && c != '\\':
			k := plainRun(b, j+1)
			s = append(s, b[j:k]...)
			j = k
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size == 1 {
				s = utf8.AppendRune(s, utf8.RuneError)
			} else {
				s = append(s, b[j:j+size]...)
			}
			j += size
		default: // backslash
			if j+1 >= len(b) {
				return "", j, false
			}
			switch e := b[j+1]; e {
			case '"', '\\', '/':
				s = append(s, e)
			case 'b':
				s = append(s, '\b')
			case 'f':
				s = append(s, '\f')
			case 'n':
				s = append(s, '\n')
			case 'r':
				s = append(s, '\r')
			case 't':
				s = append(s, '\t')
			case 'u':
				r := hex4(b, j+2)
				if r < 0 {
					return "", j, false
				}
				j += 6
				if utf16.IsSurrogate(r) {
					if r2 := hex4u(b, j); r2 >= 0 {
						if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
							s = utf8.AppendRune(s, p)
							j += 6
							continue
						}
					}
					r = utf8.RuneError // and the next \u (if any) stands alone
				}
				s = utf8.AppendRune(s, r)
				continue
			default:
				return "", j, false
			}
			j += 2
		}
	}
	return "", j, false
}

// hex4 reads the 4 hex digits at b[i:], -1 if there are not.
func hex4(b []byte, i int) rune {
	if i+4 > len(b) {
		return -1
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// hex4u reads a \uXXXX at b[i:], -1 if there is not.
func hex4u(b []byte, i int) rune {
	if i+2 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
		return -1
	}
	return hex4(b, i+2)
}

// intern returns b as a string, from the cache if it was seen before:
// first the field's last value (the same kind, source, class, version line
// after line), then a table by hash.
func (d *decoder) intern(b []byte, cache int) string {
	switch {
	case len(b) == 0:
		return ""
	case cache < 0 || len(b) > internMax:
		return string(b)
	case cache < len(d.last) && d.last[cache] == string(b):
		return d.last[cache]
	}
	slot := &d.cache[maphash.Bytes(d.seed, b)&(internSlots-1)]
	if *slot != string(b) {
		*slot = string(b)
	}
	if cache < len(d.last) {
		d.last[cache] = *slot
	}
	return *slot
}

// parseUint reads the digits at b[i:]: 0 or a number without leading
// zeros that fits in a uint64. The caller checks what follows (a fraction
// or exponent is not the ',' or '}' it wants).
func parseUint(b []byte, i int) (uint64, int, bool) {
	j := i
	var v uint64
	for j < len(b) && civil.IsDigit(b[j]) {
		c := uint64(b[j] - '0')
		if v > (math.MaxUint64-c)/10 {
			return 0, i, false
		}
		v = v*10 + c
		j++
	}
	if j == i || j-i > 1 && b[i] == '0' {
		return 0, i, false
	}
	return v, j, true
}

// parseInt is parseUint with an optional minus, for an int64 (no -0:
// encoding/json takes it, but no writer writes it).
func parseInt(b []byte, i int) (int64, int, bool) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	v, j, ok := parseUint(b, i)
	switch {
	case !ok, neg && (v == 0 || v > 1<<63), !neg && v > math.MaxInt64:
		return 0, i, false
	case neg:
		return int64(-v), j, true // -(1<<63) too
	}
	return int64(v), j, true
}

// time decodes the JSON string at b[i:] as time.Time.UnmarshalJSON does
// (which encoding/json calls with the raw string, escapes and all).
func (d *decoder) time(b []byte, i int) (time.Time, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return time.Time{}, i, false
	}
	j := plainRun(b, i+1)
	if j >= len(b) || b[j] != '"' {
		return time.Time{}, i, false // an escape, a control byte or non-ASCII: no time, let encoding/json say why
	}
	if t, ok := d.parseRFC3339(b[i+1 : j]); ok {
		return t, j + 1, true
	}
	var t time.Time
	if err := t.UnmarshalJSON(b[i : j+1]); err != nil {
		return time.Time{}, i, false
	}
	return t, j + 1, true // the forms Parse takes that RFC 3339 does not
}

// parseRFC3339 parses what the time package's own RFC 3339 fast path
// takes, "2006-01-02T15:04:05[.frac](Z|±hh:mm)", into the same Time: UTC
// for Z; Local when its offset at that instant is the one given, else a
// FixedZone without a name. false sends the string to time.UnmarshalJSON.
func (d *decoder) parseRFC3339(s []byte) (time.Time, bool) {
	if len(s) < len("2006-01-02T15:04:05Z") || s[16] != ':' {
		return time.Time{}, false
	}
	sec, ok := civil.Digits(s[17:19])
	if !ok || sec > 59 {
		return time.Time{}, false
	}
	// Timelines are in time order: the minute is mostly the last one's.
	if string(s[:16]) != d.tkey {
		if s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' {
			return time.Time{}, false
		}
		year, ok1 := civil.Digits(s[0:4])
		month, ok2 := civil.Digits(s[5:7])
		day, ok3 := civil.Digits(s[8:10])
		hour, ok4 := civil.Digits(s[11:13])
		minute, ok5 := civil.Digits(s[14:16])
		if !(ok1 && ok2 && ok3 && ok4 && ok5) || month < 1 || month > 12 || day < 1 || day > civil.DaysIn(month, year) ||
			hour > 23 || minute > 59 {
			return time.Time{}, false
		}
		d.tkey = string(s[:16])
		d.tmin = (daysSinceEpoch(year, month, day)*24+int64(hour))*3600 + int64(minute)*60
	}
	s = s[19:]
	nsec := 0
	if len(s) >= 2 && s[0] == '.' && civil.IsDigit(s[1]) {
		n := 1
		for n < len(s) && civil.IsDigit(s[n]) {
			if n <= 9 {
				nsec = nsec*10 + int(s[n]-'0') // digits after the 9th are dropped, as Parse does
			}
			n++
		}
		for k := n; k <= 9; k++ {
			nsec *= 10
		}
		s = s[n:]
	}
	unix := d.tmin + int64(sec)
	if len(s) == 1 && s[0] == 'Z' {
		return time.Unix(unix, int64(nsec)).UTC(), true
	}
	if len(s) != len("-07:00") || s[0] != '-' && s[0] != '+' || s[3] != ':' {
		return time.Time{}, false
	}
	hh, ok1 := civil.Digits(s[1:3])
	mm, ok2 := civil.Digits(s[4:6])
	if !ok1 || !ok2 || hh > 23 || mm > 59 {
		return time.Time{}, false
	}
	offset := (hh*60 + mm) * 60
	if s[0] == '-' {
		offset = -offset
	}
	t := time.Unix(unix-int64(offset), int64(nsec))
	if local := t.In(time.Local); zoneOffset(local) == offset {
		return local, true
	}
	return t.In(time.FixedZone("", offset)), true
}

func zoneOffset(t time.Time) int { _, off := t.Zone(); return off }

// daysSinceEpoch is the proleptic Gregorian day number of a date, 0 for
// 1970-01-01 (Howard Hinnant's days_from_civil).
func daysSinceEpoch(year, month, day int) int64 {
	y := int64(year)
	if month <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	m := int64(month)
	var doy int64
	if m > 2 {
		doy = (153*(m-3)+2)/5 + int64(day) - 1
	} else {
		doy = (153*(m+9)+2)/5 + int64(day) - 1
	}
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
