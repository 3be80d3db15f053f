package buffer

import (
	"context"
	"testing"
	"time"
)

// born returns the monotonic append instant of tail record seq.
func born(t *testing.T, b *Buffer, seq uint64) time.Duration {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	i := b.tailIndex(seq)
	if i == len(b.tail) || b.tail[i].seq != seq {
		t.Fatalf("seq %d not in the tail", seq)
	}
	return b.tail[i].born
}

// TestCommitDue: a commit for Run writes nothing of the tail until its oldest
// unacked record is due, and then the whole unacked tail in one group; a
// record acked before it fell due is never written; Commit writes the tail
// whatever is due.
func TestCommitDue(t *testing.T) {
	b, _ := openTest(t, testOptions(t))
	old := mustAppend(t, b, "old")
	young := mustAppend(t, b, "young")

	if err := b.commitDue(born(t, b, old) - 1); err != nil {
		t.Fatalf("commitDue: %v", err)
	}
	if st := b.Stats(); st.Commits != 0 || st.Tail != 2 {
		t.Fatalf("before any record is due: commits %d, tail %d; want 0, 2", st.Commits, st.Tail)
	}
	if err := b.commitDue(born(t, b, old)); err != nil {
		t.Fatalf("commitDue: %v", err)
	}
	if st := b.Stats(); st.Commits != 1 || st.Tail != 0 || st.Pending != 2 {
		t.Fatalf("once the oldest is due: commits %d, tail %d, pending %d; want 1, 0 (the young one rides along), 2", st.Commits, st.Tail, st.Pending)
	}

	acked := mustAppend(t, b, "acked")
	kept := mustAppend(t, b, "kept")
	if err := b.Ack(acked); err != nil {
		t.Fatal(err)
	}
	if err := b.commitDue(born(t, b, kept) - 1); err != nil { // acked was due, but is acked
		t.Fatalf("commitDue: %v", err)
	}
	if st := b.Stats(); st.Commits != 1 || st.Tail != 1 {
		t.Fatalf("after acking the due record: commits %d, tail %d; want 1 (nothing written), 1", st.Commits, st.Tail)
	}
	if err := b.commitDue(born(t, b, kept)); err != nil {
		t.Fatalf("commitDue: %v", err)
	}
	if got := allSeqs(t, b); len(got) != 3 || got[0] != old || got[1] != young || got[2] != kept {
		t.Fatalf("pending %v, want [%d %d %d]: the acked record never written", got, old, young, kept)
	}

	again := mustAppend(t, b, "again")
	if err := b.Commit(); err != nil { // Commit writes what is not due yet
		t.Fatal(err)
	}
	if st := b.Stats(); st.Commits != 3 || st.Tail != 0 {
		t.Fatalf("after Commit: commits %d, tail %d; want 3, 0", st.Commits, st.Tail)
	}
	if got := allSeqs(t, b); len(got) != 4 || got[3] != again {
		t.Fatalf("pending %v, want %d last", got, again)
	}
}

// TestRunAckedBeforeDeadlineNeverWritten: on the real clock, with an uplink
// that acks each record 300 ms after its append (a slow cellular round trip,
// well inside the 1 s interval), Run never writes a record, whatever the
// phase of the appends; the tick-and-grace loop it replaced wrote every
// record still unacked 100 ms after its append. A record nobody acks is still
// committed, within the interval.
func TestRunAckedBeforeDeadlineNeverWritten(t *testing.T) {
	opts := testOptions(t)
	opts.CommitInterval = time.Second
	b, path := openTest(t, opts)
	wrote := make(chan uint64, 100)
	b.afterCommit = func(last uint64) {
		if last > 0 {
			wrote <- last
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()

	const rtt = 300 * time.Millisecond
	tick := time.NewTicker(7 * time.Millisecond)
	defer tick.Stop()
	acks := make(chan struct{}, 200)
	for range 150 { // about a second of records, a few hundred ms apart in phase from any deadline
		<-tick.C
		seq, err := b.Append(time.Now(), enc("NEVER-ON-DISK"))
		if err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(rtt, func() {
			if err := b.Ack(seq); err != nil {
				t.Errorf("Ack: %v", err)
			}
			acks <- struct{}{}
		})
	}
	for range 150 {
		<-acks
	}
	start := time.Now()
	kept := mustAppend(t, b, "not acked")
	select {
	case got := <-wrote:
		if got != kept {
			t.Fatalf("a commit wrote up to seq %d; want the first write to be the unacked seq %d", got, kept)
		}
	case <-ctx.Done():
		t.Fatal("the unacked record was never committed")
	}
	if took := time.Since(start); took < opts.CommitInterval*9/10 || took > opts.CommitInterval+2*time.Second {
		t.Errorf("the unacked record was committed %v after its append, want about one interval (%v)", took, opts.CommitInterval)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if fileContains(t, path, "NEVER-ON-DISK") {
		t.Error("a record acked before its deadline was written to the file")
	}
}

// TestCrashGapCoversUncommittedTail: records a commit left in the tail (not yet due) are lost by a crash, and
// the gap logged at the next Open must start at the first of them, so downstream finds every lost fix inside
// the logged range.
func TestCrashGapCoversUncommittedTail(t *testing.T) {
	b, path, opts := openBlock(t, 100)
	old := mustAppend(t, b, "old")
	mustAppend(t, b, "old")
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	young := mustAppend(t, b, "young")
	mustAppend(t, b, "young")
	if err := b.Ack(old); err != nil { // a deletion: the next commit is not idle
		t.Fatal(err)
	}
	if err := b.commitDue(-1); err != nil { // nothing due
		t.Fatal(err)
	}
	if st := b.Stats(); st.Tail != 2 || st.Commits != 2 {
		t.Fatalf("tail %d, commits %d after the deletion commit, want the 2 young records left, 2", st.Tail, st.Commits)
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
