package timeline

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin for the Local-zone cases
)

// stdDecode is what DecodeJSON must always give: encoding/json into a zero
// Record.
func stdDecode(b []byte) (*Record, error) {
	var r Record
	err := json.Unmarshal(b, &r)
	return &r, err
}

// sameRecord says how a and b differ: times by Equal first, then the whole
// representation (wall clock, location) by DeepEqual.
func sameRecord(a, b *Record) string {
	if !a.Time.Equal(b.Time) || !a.Scheduled.Equal(b.Scheduled) {
		return fmt.Sprintf("times differ: %v/%v vs %v/%v", a.Time, a.Scheduled, b.Time, b.Scheduled)
	}
	if !reflect.DeepEqual(a, b) {
		return fmt.Sprintf("records differ:\n%#v\n%#v", a, b)
	}
	return ""
}

// checkDecode decodes b both ways and fails unless the results are the
// same (or both errors, the same error). It reports whether the fast path
// took b.
func checkDecode(t testing.TB, b []byte) (fast bool) {
	t.Helper()
	want, werr := stdDecode(b)
	d := newDecoder()
	var got Record
	fast = d.fast(b, &got)
	if fast {
		if werr != nil {
			t.Fatalf("fast path took %q, encoding/json says %v", b, werr)
		}
		if diff := sameRecord(&got, want); diff != "" {
			t.Fatalf("%q: fast path and encoding/json %s", b, diff)
		}
	}
	var viaAPI Record
	viaAPI.Seq = 99 // DecodeJSON clears what was there
	err := viaAPI.DecodeJSON(b)
	if fmt.Sprint(err) != fmt.Sprint(werr) {
		t.Fatalf("%q: DecodeJSON error %v, encoding/json %v", b, err, werr)
	}
	if err == nil {
		if diff := sameRecord(&viaAPI, want); diff != "" {
			t.Fatalf("%q: DecodeJSON and encoding/json %s", b, diff)
		}
	}
	return fast
}

var decodeStrings = append([]string{"ok", "probe", "http_502", "jiameng-api-6a5bb5b8b6-2x8qr", "v1", "\\u0041 not an escape",
	"/slash/\\back\\", "日本語", "🚀\U0010FFFF", "\u007f\u0080\u07ff\u0800\uffff", "a\u2028b", strings.Repeat("long-", 40),
	"Root=1-65e19910-25f5f3000000000000000001"}, nastyStrings...)

// randomRecord is a record with any field set or not, to anything the
// writers may meet.
func randomRecord(rng *rand.Rand, zones []*time.Location) *Record {
	pick := func() string {
		if rng.IntN(3) == 0 {
			return ""
		}
		return decodeStrings[rng.IntN(len(decodeStrings))]
	}
	r := &Record{Kind: Kind(pick()), Source: pick(), Scenario: pick(), Method: pick(), Replica: pick(), Version: pick(),
		Error: pick(), TraceID: pick(), Object: pick(), State: pick(), Reason: pick(), Class: Class(pick()), Cause: Cause(pick())}
	randTime := func() time.Time {
		var t time.Time
		switch rng.IntN(4) {
		case 0: // anywhere in years 0-9999
			t = time.Unix(rng.Int64N(253402300800+62167219200)-62167219200, rng.Int64N(1e9))
		case 1: // around the 2026 DST changes in Europe
			t = time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(4 * time.Hour))))
		case 2:
			t = time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(4 * time.Hour))))
		default:
			t = time.Date(2024, 2, 28, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(72 * time.Hour))))
		}
		if rng.IntN(2) == 0 {
			t = t.Truncate(time.Duration([]int64{1, 1e3, 1e6, 1e8, 1e9}[rng.IntN(5)]))
		}
		t = t.In(zones[rng.IntN(len(zones))])
		if t.Year() < 0 || t.Year() > 9999 {
			t = t.UTC()
		}
		return t
	}
	r.Time = randTime()
	if rng.IntN(4) == 0 {
		r.Time = time.Time{}
	}
	if rng.IntN(2) == 0 {
		r.Scheduled = randTime()
	}
	if rng.IntN(2) == 0 {
		nums := []int64{0, 1, -1, 9, 10, 200, 502, math.MaxInt64, math.MinInt64, math.MaxInt32 + 1}
		num := func() int64 {
			if rng.IntN(2) == 0 {
				return nums[rng.IntN(len(nums))]
			}
			return rng.Int64() >> rng.IntN(64)
		}
		r.Seq = []uint64{rng.Uint64(), math.MaxUint64, 1<<63 + 1, uint64(rng.IntN(1e6))}[rng.IntN(4)]
		r.Latency = time.Duration(num())
		r.Status = int(num())
		r.Bytes = num()
	}
	if rng.IntN(5) == 0 {
		r.Attrs = map[string]string{}
		for range rng.IntN(6) {
			r.Attrs[pick()] = pick()
		}
	}
	return r
}

func decodeZones(t testing.TB) []*time.Location {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return []*time.Location{time.UTC, time.Local, berlin, time.FixedZone("x", 5*3600+1800), time.FixedZone("", -7*3600),
		time.FixedZone("y", 3600), time.FixedZone("z", -(9*3600 + 59*60))}
}

// withLocal runs f with time.Local set to loc (decoding a time whose
// offset is Local's gives Local, so this matters).
func withLocal(t *testing.T, loc *time.Location, f func()) {
	old := time.Local
	time.Local = loc
	defer func() { time.Local = old }()
	f()
}

// Every record AppendJSON writes decodes on the fast path, to exactly what
// encoding/json makes of it.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, local := range []*time.Location{time.Local, time.UTC, berlin, time.FixedZone("", 5*3600+1800)} {
		t.Run(local.String(), func(t *testing.T) {
			withLocal(t, local, func() {
				rng := rand.New(rand.NewPCG(3, 4))
				zones := decodeZones(t)
				for range 8000 {
					r := randomRecord(rng, zones)
					b, err := r.AppendJSON(nil)
					if err != nil {
						t.Fatal(err)
					}
					if !checkDecode(t, b) {
						t.Fatalf("fast path did not take AppendJSON's %s", b)
					}
				}
			})
		})
	}
}

// Lines in spellings AppendJSON never writes decode as encoding/json
// decodes them, errors included, on the fast path or not.
func TestDecodeOtherSpellings(t *testing.T) {
	const base = `"kind":"request","time":"2024-03-01T09:00:00.000069521Z"`
	lines := []struct {
		line string
		fast bool // the fast path takes it
	}{
		{`{` + base + `}`, true},
		{`{}`, true},
		{`{"kind":""}`, true},
		{`{"time":"2024-03-01T09:00:00Z","kind":"pod","attrs":{"b":"2","a":"1"},"source":"kube"}`, true}, // reordered
		{`{"kind":"a","attrs":{}}`, true},
		{`{"kind":"a","attrs":{"k":"1","k":"2"}}`, true},
		{`{"kind":"a\u0062\u00e9\u2028\ud83d\ude80\/\"\\\b\f\n\r\t"}`, true},
		{`{"kind":"\uD83D\uDE80\uFFFD\u0000\u001f"}`, true},
		{`{"kind":"\ud83d"}`, true},       // lone high surrogate
		{`{"kind":"\ude80"}`, true},       // lone low surrogate
		{`{"kind":"\ud83dx"}`, true},      // high surrogate then not an escape
		{`{"kind":"\ud83d\u0041"}`, true}, // high surrogate then not a low one
		{`{"kind":"\ud83d\ud83d\ude80"}`, true},
		{"{\"kind\":\"\xff\xfe\xc3\"}", true}, // invalid UTF-8
		{"{\"kind\":\"\xed\xa0\x80\"}", true}, // an encoded surrogate
		{"{\"kind\":\"h\xc3\xa9llo\"}", true}, // valid UTF-8
		{`{"kind":"a\'b"}`, false},            // not a JSON escape
		{`{"kind":"a\x41"}`, false},           // nor this
		{`{"kind":"\u12"}`, false},            // short \u
		{`{"kind":"\u12G4"}`, false},          // not hex
		{"{\"kind\":\"tab\there\"}", false},   // raw control character
		{`{"kind":"a","seq":18446744073709551615,"latency_ns":-9223372036854775808,"bytes":9223372036854775807}`, true},
		{`{"kind":"a","seq":18446744073709551616}`, false}, // overflows
		{`{"kind":"a","latency_ns":9223372036854775808}`, false},
		{`{"kind":"a","latency_ns":-9223372036854775809}`, false},
		{`{"kind":"a","seq":0,"status":0,"bytes":0,"latency_ns":0}`, true},
		{`{"kind":"a","seq":-1}`, false},
		{`{"kind":"a","status":-0}`, false},
		{`{"kind":"a","status":01}`, false},
		{`{"kind":"a","status":200.0}`, false},
		{`{"kind":"a","status":2e2}`, false},
		{`{"kind":"a","status":"200"}`, false},
		{`{"kind":"a","status":-}`, false},
		{`{"kind":"a","status":}`, false},
		{`{ "kind":"a"}`, false},
		{`{"kind" : "a"}`, false},
		{`{"kind":"a" }`, false},
		{`{"kind":"a",` + "\n" + `"source":"b"}`, false},
		{` {"kind":"a"}`, false},
		{`{"kind":"a","unknown":{"x":[1,2,{"y":null}]}}`, false},
		{`{"Kind":"a"}`, false}, // encoding/json folds case
		{`{"KIND":"a","kind":"b"}`, false},
		{`{"ki\u006ed":"a"}`, false},
		{`{"kind":"a","kind":"b"}`, false},
		{`{"kind":"a","attrs":{"x":"1"},"attrs":{"y":"2"}}`, false}, // merged by encoding/json
		{`{"kind":null}`, false},
		{`{"kind":"a","time":null}`, false},
		{`{"kind":"a","attrs":null}`, false},
		{`{"kind":"a","attrs":{"x":null}}`, false},
		{`{"kind":"a","attrs":{"x":1}}`, false},
		{`{"kind":"a","attrs":[]}`, false},
		{`{"kind":"a","attrs":{"x":"1",}}`, false},
		{`{"kind":"a","attrs":{"x":"1"}`, false},
		{`{"kind":"a",}`, false},
		{`{"kind":"a"}}`, false},
		{`{"kind":"a"}x`, false},
		{`{"kind":"a"`, false},
		{`{"kind":"a`, false},
		{`{"kind":`, false},
		{`{"kind"`, false},
		{`{`, false},
		{`[]`, false},
		{`null`, false},
		{`"kind"`, false},
		{`{"kind":true}`, false},
		{`{"kind":1}`, false},
		// Times: RFC 3339 on the fast path, what time.Parse also takes through
		// time.Time.UnmarshalJSON, the rest to encoding/json.
		{`{"kind":"a","time":"2024-03-01T09:00:00.123456789123Z"}`, true},
		{`{"kind":"a","time":"2024-03-01T09:00:00.1Z"}`, true},
		{`{"kind":"a","time":"2024-03-01T09:00:00.Z"}`, false},
		{`{"kind":"a","time":"2024-03-01T09:00:00,5Z"}`, true}, // time.Parse takes it,
		{`{"kind":"a","time":"2024-02-29T23:59:59+05:30"}`, true},
		{`{"kind":"a","time":"2024-02-29T23:59:59-00:00"}`, true},
		{`{"kind":"a","time":"2024-02-29T23:59:59+00:00"}`, true},
		{`{"kind":"a","time":"2026-03-29T02:30:00+01:00"}`, true},
		{`{"kind":"a","time":"2026-10-25T02:30:00+02:00"}`, true},
		{`{"kind":"a","time":"2026-10-25T02:30:00+01:00"}`, true},
		{`{"kind":"a","time":"0000-01-01T00:00:00Z","scheduled":"9999-12-31T23:59:59.999999999Z"}`, true},
		{`{"kind":"a","time":"0001-01-01T00:00:00Z","scheduled":"0001-01-01T00:00:00Z"}`, true},
		{`{"kind":"a","time":"2023-02-29T00:00:00Z"}`, false},
		{`{"kind":"a","time":"2024-13-01T00:00:00Z"}`, false},
		{`{"kind":"a","time":"2024-03-01T24:00:00Z"}`, false},
		{`{"kind":"a","time":"2024-03-01T09:60:00Z"}`, false},
		{`{"kind":"a","time":"2024-03-01T09:00:60Z"}`, false},
		{`{"kind":"a","time":"2024-03-01t09:00:00Z"}`, false},
		{`{"kind":"a","time":"2024-03-01T09:00:00z"}`, false},
		{`{"kind":"a","time":"2024-03-01T09:00:00+24:00"}`, true}, // time.Parse takes it,
		{`{"kind":"a","time":"2024-03-01T09:00:00+01:60"}`, true}, // time.Parse takes it,
		{`{"kind":"a","time":"2024-03-01T9:00:00Z"}`, true},       // time.Parse takes it,
		{`{"kind":"a","time":"2024-03-01T09:00:00"}`, false},
		{`{"kind":"a","time":"2024-03-01"}`, false},
		{`{"kind":"a","time":"2024-03-01T09:00:00+0100"}`, false},
		{`{"kind":"a","time":"+2024-03-01T09:00:00Z"}`, false},
		{`{"kind":"a","time":"2024-03-01T09:00:00\u005a"}`, false},
		{`{"kind":"a","time":""}`, false},
		{`{"kind":"a","time":2024}`, false},
		{"{\"kind\":\"a\",\"time\":\"2024-03-01T09:00:00Z\xff\"}", false},
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, local := range []*time.Location{time.UTC, berlin} {
		withLocal(t, local, func() {
			for _, c := range lines {
				if fast := checkDecode(t, []byte(c.line)); fast != c.fast {
					t.Errorf("%s: fast path %v, want %v", c.line, fast, c.fast)
				}
			}
		})
	}
}

// The fast path agrees with encoding/json on anything: the same record, or
// both fail, with the same error; and it never panics.
func FuzzDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	zones := decodeZones(f)
	for range 200 {
		b, err := randomRecord(rng, zones).AppendJSON(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`{"kind":"a\u0062\ud83d\ude80\ud83d\/"}`, `{"kind":"a","attrs":{"k":"\u2028","k":""}}`,
		`{"kind":"a","seq":18446744073709551615,"latency_ns":-9223372036854775808}`, `{"kind":"a","status":-0}`,
		`{"time":"2024-02-29T23:59:59.1234567891+05:30"}`, `{"scheduled":"2024-03-01T09:00:00,5Z"}`, `{"kind":"a","Kind":"b"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
	})
}

func BenchmarkDecode(b *testing.B) {
	line := []byte(`{"kind":"request","time":"2024-03-01T09:00:00.000069521Z","source":"probe","seq":1,"scheduled":"2024-03-01T09:00:00Z","latency_ns":5733812,"status":200,"class":"ok","bytes":27,"replica":"jiameng-api-6a5bb5b8b6-2x8qr","version":"v1","trace_id":"Root=1-65e19910-25f5f3000000000000000001"}`)
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			var r Record
			if err := json.Unmarshal(line, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(line)))
		d, r := newDecoder(), new(Record)
		for b.Loop() {
			if err := d.decode(line, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
