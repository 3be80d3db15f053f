package buffer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// windowChildPrefix, before the path in crashChildEnv, selects windowChild.
const windowChildPrefix = "window:"

// windowInterval is windowChild's commit interval.
const windowInterval = 400 * time.Millisecond

// windowChild appends a record every 10 ms, never acked, under Run with a
// windowInterval commit interval, reporting "a SEQ" after each Append, until
// it is killed.
func windowChild(path string) {
	opts := quietOptions()
	opts.CommitInterval = windowInterval
	b, err := Open(path, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	go func() { _ = b.Run(context.Background()) }()
	fmt.Printf("ready %d\n", b.Stats().NextSeq)
	tick := time.NewTicker(10 * time.Millisecond)
	for range tick.C {
		s, err := b.Append(b.now(), enc("window-test-payload"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child append:", err)
			os.Exit(3)
		}
		fmt.Printf("a %d\n", s)
	}
}

// TestKill9LosesOneIntervalAtMost: on the real clock, with nothing acked,
// kill -9 loses only records appended within one commit interval (plus the
// fsync in flight) of the kill: each record is on disk by its deadline.
// The parent times each record when it reads its line, never before its
// append, so a late read only makes the test more lenient.
func TestKill9LosesOneIntervalAtMost(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	// The fsync's own time, and the parent's lag: generous, the machine is shared.
	const slack = 400 * time.Millisecond
	path := filepath.Join(t.TempDir(), "buffer.db")
	for round := range 3 {
		seen := map[uint64]time.Time{}
		var ready, killAt time.Time
		runFor := 1500*time.Millisecond + time.Duration(round)*370*time.Millisecond
		runKilledChild(t, crashChildEnv, windowChildPrefix+path, func(ev childEvent) bool {
			now := time.Now()
			switch ev.kind {
			case "ready":
				ready = now
			case "a":
				seen[ev.n] = now
			}
			if killAt.IsZero() && !ready.IsZero() && now.Sub(ready) > runFor {
				killAt = time.Now()
				return true
			}
			return false
		})
		if killAt.IsZero() {
			t.Fatalf("round %d: child ended before the kill", round)
		}
		b, err := Open(path, testOptions(t))
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		got := allSeqs(t, b)
		lost := 0
		for seq, at := range seen {
			if _, ok := slices.BinarySearch(got, seq); ok {
				continue
			}
			lost++
			if age := killAt.Sub(at); age > windowInterval+slack {
				t.Errorf("round %d: seq %d, appended at least %v before the kill, lost (commit interval %v)", round, seq, age.Round(time.Millisecond), windowInterval)
			}
		}
		t.Logf("round %d: %d records reported, %d on disk, %d lost", round, len(seen), len(got), lost)
		if len(got) == 0 {
			t.Errorf("round %d: nothing committed in %v", round, runFor)
		}
		// Start the next round empty: its records alone are checked.
		if len(got) > 0 {
			if err := b.Ack(got...); err != nil {
				t.Fatal(err)
			}
		}
		mustClose(t, b)
		checkDB(t, path)
	}
}
