package timeline

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

func stdJSON(t testing.TB, r *Record) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func checkSame(t testing.TB, r *Record) {
	t.Helper()
	got, err := r.AppendJSON(nil)
	if err != nil {
		t.Fatalf("AppendJSON(%+v): %v", r, err)
	}
	if want := stdJSON(t, r); !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON differs from encoding/json\n got %s\nwant %s", got, want)
	}
	var back Record
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
}

var nastyStrings = []string{"", "pod-a", `<script>alert("x")</script>`, "a\"b\\c", "\x00\x01\x1f\x7f", "tab\tnl\ncr\r\b\f",
	"\u2028\u2029", "héllo wörld ✓ 🚀", "\xff\xfe bad utf8 \xc3", "&amp;<>", "\u00e9\u0301", "\xed\xa0\x80"}

// Every field combination the prober, the lab and observe write, plus
// hostile strings, encode exactly as encoding/json does.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string {
		if rng.IntN(3) == 0 {
			return ""
		}
		return nastyStrings[rng.IntN(len(nastyStrings))]
	}
	base := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	zones := []*time.Location{time.UTC, time.FixedZone("x", 5*3600+1800), time.FixedZone("y", -7*3600), time.Local}
	for i := range 20000 {
		r := &Record{Kind: Kind(pick()), Source: pick(), Scenario: pick(), Method: pick(), Replica: pick(), Version: pick(),
			Error: pick(), TraceID: pick(), Object: pick(), State: pick(), Reason: pick(), Class: Class(pick()), Cause: Cause(pick())}
		r.Time = base.Add(time.Duration(rng.Int64N(int64(1000*time.Hour)) - int64(500*time.Hour))).In(zones[rng.IntN(len(zones))])
		if rng.IntN(2) == 0 {
			r.Time = r.Time.Truncate(time.Duration(rng.IntN(4)) * time.Millisecond)
		}
		if rng.IntN(2) == 0 {
			r.Scheduled = r.Time.Add(-time.Duration(rng.IntN(1e9)))
		}
		if rng.IntN(2) == 0 {
			r.Seq = rng.Uint64()
			r.Latency = time.Duration(rng.Int64() - rng.Int64())
			r.Status = rng.IntN(600)
			r.Bytes = rng.Int64N(1 << 40)
		}
		if i%50 == 0 {
			r.Attrs = map[string]string{pick(): pick(), "ip": "127.0.0.2"}
		}
		checkSame(t, r)
	}
	checkSame(t, &Record{})
	// A record encoding/json cannot write fails without breaking the stream.
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.Write(&Record{Kind: KindEvent, Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Error("year -1 encoded without error")
	}
	if err := w.Write(&Record{Kind: KindEvent, Time: base}); err != nil {
		t.Error(err)
	}
	w.Flush()
	if buf.String() != `{"kind":"event","time":"2026-11-23T10:00:00Z"}`+"\n" {
		t.Errorf("stream after a bad record: %q", buf.String())
	}
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range nastyStrings {
		f.Add(s, int64(0), uint64(1))
	}
	f.Fuzz(func(t *testing.T, s string, ns int64, seq uint64) {
		at := time.Unix(0, ns).UTC()
		checkSame(t, &Record{Kind: KindRequest, Time: at, Scheduled: at, Seq: seq, Replica: s, Error: s, Latency: time.Duration(ns)})
	})
}

func BenchmarkWriterWrite(b *testing.B) {
	w := NewWriter(io.Discard)
	now := time.Now()
	r := &Record{Kind: KindRequest, Time: now, Source: "probe", Seq: 123456, Scheduled: now, Latency: 1234567,
		Status: 200, Class: ClassOK, Bytes: 3, Replica: "pod-a", TraceID: "Root=1-6745a1b2-0a1b2c3d000000000001e240"}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(r); err != nil {
			b.Fatal(err)
		}
	}
}
