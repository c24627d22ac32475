package probe

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/timeline"
)

// Workers of one run on a shared epoch send the single run's schedule
// between them: every slot exactly once, each worker every third one, with
// trace ids that never collide and that the server saw as sent.
func TestShardsSplitOneSchedule(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	ts := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get(TraceHeader)]++
		mu.Unlock()
	}))
	t.Cleanup(ts.Close)
	const of, n = 3, 90
	epoch := time.Now().Add(100 * time.Millisecond)
	recs := make([]map[uint64]*timeline.Record, of)
	var wg sync.WaitGroup
	for i := range of {
		wg.Go(func() {
			_, recs[i] = run(t, Config{URL: ts.URL, Rate: 600, Requests: n, Connections: 2,
				Shard: Shard{Index: i, Of: of}, Epoch: epoch, RunID: 0xabcdef01})
		})
	}
	wg.Wait()
	mu.Lock() // the handlers are done; the lock orders their writes before these reads
	defer mu.Unlock()
	bySeq := map[uint64]int{}
	for i, m := range recs {
		if len(m) != n/of {
			t.Errorf("worker %d sent %d, want %d", i, len(m), n/of)
		}
		for seq, r := range m {
			if int(seq-1)%of != i {
				t.Errorf("worker %d sent slot %d", i, seq)
			}
			if want := epoch.Add(time.Duration(seq-1) * time.Second / 600); !r.Scheduled.Equal(want) {
				t.Errorf("slot %d due %v, want %v", seq, r.Scheduled, want)
			}
			if seen[r.TraceID] != 1 {
				t.Errorf("slot %d: trace id %s reached the server %d times", seq, r.TraceID, seen[r.TraceID])
			}
			bySeq[seq]++
		}
	}
	for seq := uint64(1); seq <= n; seq++ {
		if bySeq[seq] != 1 {
			t.Errorf("slot %d sent %d times", seq, bySeq[seq])
		}
	}
	if len(seen) != n {
		t.Errorf("server saw %d trace ids, want %d", len(seen), n)
	}
}

// A worker that starts after the epoch skips its slots already due rather
// than sending them in a burst.
func TestShardStartingLateSkipsPastSlots(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(ts.Close)
	epoch := time.Now().Add(-time.Second) // 100 slots ago at 100/s
	_, recs := run(t, Config{URL: ts.URL, Rate: 100, Requests: 120, Shard: Shard{Index: 1, Of: 2}, Epoch: epoch})
	if len(recs) == 0 || len(recs) > 10 {
		t.Fatalf("%d requests, want the few of slots 101..120", len(recs))
	}
	for seq := range recs {
		if seq <= 100 || seq%2 != 0 {
			t.Errorf("slot %d: before the start, or not this shard's", seq)
		}
	}
}

func TestShardRefusesBadIndex(t *testing.T) {
	for _, s := range []Shard{{Index: 3, Of: 3}, {Index: -1, Of: 2}, {Index: 1}} {
		if _, err := Run(t.Context(), Config{URL: "http://127.0.0.1:1/", Shard: s}, nil); err == nil {
			t.Errorf("shard %+v accepted", s)
		}
	}
}
