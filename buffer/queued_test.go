package buffer

import (
	"testing"
	"time"
)

// TestQueuedInstant: every record appended by this Buffer tells its append
// instant on the monotonic clock, in the tail and once committed, in
// append order; records read from disk after a reopen (a restart) do not.
func TestQueuedInstant(t *testing.T) {
	opts := testOptions(t)
	b, path := openTest(t, opts)
	start := time.Now()
	for i := range 5 {
		mustAppend(t, b, "x")
		if i == 2 {
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(what string, recs []Record) {
		t.Helper()
		if len(recs) != 5 {
			t.Fatalf("%s: %d records, want 5", what, len(recs))
		}
		for _, r := range recs {
			if r.Queued.IsZero() || r.Queued.Before(start) || time.Since(r.Queued) > time.Minute {
				t.Errorf("%s: seq %d queued %v, want just now", what, r.Seq, r.Queued)
			}
		}
	}
	oldest, err := b.Oldest(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	check("oldest", oldest)
	for i := 1; i < len(oldest); i++ {
		if oldest[i].Queued.Before(oldest[i-1].Queued) {
			t.Errorf("seq %d queued before seq %d", oldest[i].Seq, oldest[i-1].Seq)
		}
	}
	newest, err := b.Newest(10)
	if err != nil {
		t.Fatal(err)
	}
	check("newest", newest)

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	again, err := b2.Newest(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 5 {
		t.Fatalf("after reopen: %d records, want 5", len(again))
	}
	for _, r := range again {
		if !r.Queued.IsZero() {
			t.Errorf("after reopen: seq %d queued %v, want zero (a previous run's record)", r.Seq, r.Queued)
		}
	}
}
