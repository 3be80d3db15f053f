package buffer

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestClockStepAgesNothing: MaxAge counts the caller's times, never the gateway's clock. A gateway without a
// real-time clock records for days on a clock stuck at its last shutdown, then NTP steps it forward by more than
// MaxAge (and a bad server steps it back again): the backlog stays, in the tail, on disk and across a reopen.
// Once the caller's own times move past MaxAge, the old records go.
func TestClockStepAgesNothing(t *testing.T) {
	const day = 24 * time.Hour
	wall := newFakeClock() // the gateway's clock
	opts := testOptions(t)
	opts.Now = wall.Now
	opts.MaxAge = 2 * day
	gnss := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC) // the receiver's clock, days ahead of the stuck wall clock
	appendAt := func(b *Buffer, n int) {
		t.Helper()
		for range n {
			if _, err := b.Append(gnss, enc("fix")); err != nil {
				t.Fatal(err)
			}
			gnss = gnss.Add(time.Second)
		}
	}
	b, path := openTest(t, opts)
	appendAt(b, 5)
	commit(t, b) // 1..5 on disk
	appendAt(b, 3)
	for _, step := range []time.Duration{10 * day, -30 * day, 40 * day} {
		wall.Add(step)
		commit(t, b)
		appendAt(b, 1)
	}
	if got, st := allSeqs(t, b), b.Stats(); len(got) != 11 || st.DroppedMaxAge != 0 {
		t.Fatalf("after clock steps pending %v, dropped for age %d; want 1..11, none", got, st.DroppedMaxAge)
	}

	mustClose(t, b)
	wall.Add(-25 * day)
	b2, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, b2)
	if got := allSeqs(t, b2); !slices.Equal(got, seqRange(1, 11)) {
		t.Fatalf("after a reopen on a stepped clock pending %v, want 1..11", got)
	}

	gnss = gnss.Add(opts.MaxAge - 5*time.Second) // the caller's time passes MaxAge for the first records only
	appendAt(b2, 1)
	commit(t, b2)
	got := allSeqs(t, b2)
	if st := b2.Stats(); fmt.Sprint(got) != fmt.Sprint(seqRange(7, 12)) || st.DroppedMaxAge != 6 {
		t.Errorf("after the caller's time moved on pending %v, dropped for age %d; want 7..12 and 6", got, st.DroppedMaxAge)
	}
	mustClose(t, b2)
}
