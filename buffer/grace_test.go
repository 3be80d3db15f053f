package buffer

import (
	"context"
	"testing"
	"time"
)

// TestCommitGrace: a commit with a grace leaves records younger than it in
// the tail, and writes them once they are old enough.
func TestCommitGrace(t *testing.T) {
	b, _ := openTest(t, testOptions(t))
	old := mustAppend(t, b, "old")
	time.Sleep(30 * time.Millisecond) // age the first record in real (monotonic) time
	young := mustAppend(t, b, "young")

	if err := b.commitGrace(20 * time.Millisecond); err != nil {
		t.Fatalf("commitGrace: %v", err)
	}
	st := b.Stats()
	if st.Commits != 1 || st.Tail != 1 || st.Pending != 2 {
		t.Fatalf("after grace commit: commits %d, tail %d, pending %d; want 1, 1, 2", st.Commits, st.Tail, st.Pending)
	}
	if got := allSeqs(t, b); len(got) != 2 || got[0] != old || got[1] != young {
		t.Fatalf("pending %v, want [%d %d]", got, old, young)
	}

	if err := b.Ack(young); err != nil {
		t.Fatal(err)
	}
	if err := b.commitGrace(time.Hour); err != nil {
		t.Fatalf("commitGrace: %v", err)
	}
	if st := b.Stats(); st.Commits != 1 || st.Tail != 0 || st.Pending != 1 {
		t.Fatalf("after acking the young record: commits %d, tail %d, pending %d; want 1 (nothing written), 0, 1", st.Commits, st.Tail, st.Pending)
	}

	again := mustAppend(t, b, "again")
	if err := b.Commit(); err != nil { // Commit has no grace
		t.Fatal(err)
	}
	if st := b.Stats(); st.Commits != 2 || st.Tail != 0 {
		t.Fatalf("after Commit: commits %d, tail %d; want 2, 0", st.Commits, st.Tail)
	}
	if got := allSeqs(t, b); len(got) != 2 || got[1] != again {
		t.Fatalf("pending %v, want [%d %d]", got, old, again)
	}
}

// TestRunAckedWithinGraceNeverWritten: with an uplink that acks each record
// 2 ms after its append, within the grace (a tenth of the interval), Run
// never writes a record, whatever the phase of its ticks; without the grace
// each tick would catch the records of the last 2 ms. Records nobody acks are
// still committed.
func TestRunAckedWithinGraceNeverWritten(t *testing.T) {
	opts := testOptions(t)
	opts.CommitInterval = 100 * time.Millisecond // grace 10 ms
	b, _ := openTest(t, opts)
	var wrote []uint64
	b.afterCommit = func(last uint64) {
		if last > 0 {
			wrote = append(wrote, last)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()

	type inflight struct {
		seq uint64
		at  time.Time
	}
	var q []inflight
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for end := time.Now().Add(450 * time.Millisecond); time.Now().Before(end) || len(q) > 0; {
		<-tick.C
		for len(q) > 0 && time.Since(q[0].at) >= 2*time.Millisecond {
			if err := b.Ack(q[0].seq); err != nil {
				t.Fatal(err)
			}
			q = q[1:]
		}
		if time.Now().Before(end) {
			q = append(q, inflight{mustAppend(t, b, "acked"), time.Now()})
		}
	}
	kept := mustAppend(t, b, "not acked")
	deadline := time.After(5 * time.Second)
	for b.Stats().Tail > 0 {
		select {
		case <-deadline:
			t.Fatal("an unacked record was never committed")
		case <-tick.C:
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(wrote) != 1 || wrote[0] != kept {
		t.Errorf("commits wrote up to seqs %v, want only [%d]", wrote, kept)
	}
}

// TestCrashGapCoversUncommittedTail: records the grace left in the tail are lost by a crash, and the gap logged
// at the next Open must start at the first of them, so downstream finds every lost fix inside the logged range.
func TestCrashGapCoversUncommittedTail(t *testing.T) {
	b, path, opts := openBlock(t, 100)
	mustAppend(t, b, "old")
	mustAppend(t, b, "old")
	time.Sleep(30 * time.Millisecond) // age the first records in real (monotonic) time
	young := mustAppend(t, b, "young")
	mustAppend(t, b, "young")
	if err := b.commitGrace(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Tail != 2 {
		t.Fatalf("tail %d after the grace commit, want the 2 young records", st.Tail)
	}
	hwm := b.Stats().ReservedSeq
	crash(t, b) // the young records are lost

	b2, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, b2)
	st := b2.Stats()
	if gapFrom := hwm - st.SeqGap + 1; gapFrom != young {
		t.Errorf("logged gap %d..%d, want it to start at %d, the first record lost with the tail", gapFrom, hwm, young)
	}
}
