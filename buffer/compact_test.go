package buffer

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// fillAndDrain appends n records of pad, commits, then acks all but every keepEvery-th and commits again: a
// file that is mostly free pages, worth compacting. It returns the seqs kept.
func fillAndDrain(t testing.TB, b *Buffer, n, keepEvery int, pad string) []uint64 {
	t.Helper()
	var keep, ack []uint64
	for i := range n {
		s := mustAppend(t, b, pad)
		if i%keepEvery == 0 {
			keep = append(keep, s)
		} else {
			ack = append(ack, s)
		}
	}
	commit(t, b)
	if err := b.Ack(ack...); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	return keep
}

// TestCommitsGoOnDuringCompaction: while a compaction copies the file, commits complete (the loss window stays
// one commit interval), and what they wrote and deleted is in the compacted file: records, a group written
// and then rewritten, a group deleted.
func TestCommitsGoOnDuringCompaction(t *testing.T) {
	b, path := openTest(t, testOptions(t))
	b.compactMin = 64 << 10
	keep := fillAndDrain(t, b, 5000, 1000, strings.Repeat("z", 200))

	copying := make(chan struct{})
	release := make(chan struct{})
	b.compactHook = func() {
		select {
		case <-copying:
		default:
			close(copying)
			<-release
		}
	}
	done := make(chan error, 1)
	go func() {
		ok, err := b.compactIfWorthIt(context.Background())
		if err == nil && !ok {
			t.Error("compaction not worth it")
		}
		done <- err
	}()
	<-copying
	committed := make(chan error, 1)
	var during []uint64
	go func() {
		// Enough for a group of their own (format 4), then one of them
		// acked in a second commit: the group is rewritten during the copy.
		for range 120 {
			s, err := b.Append(b.now(), enc("during"))
			if err != nil {
				committed <- err
				return
			}
			during = append(during, s)
		}
		if err := b.Ack(keep[0]); err != nil {
			committed <- err
			return
		}
		if err := b.Commit(); err != nil {
			committed <- err
			return
		}
		if err := b.Ack(during[5]); err != nil {
			committed <- err
			return
		}
		committed <- b.Commit()
	}()
	select {
	case err := <-committed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("a commit waited for the compaction's copy")
	}
	if err := b.Commit(); err != nil { // nothing new: must not wait either
		t.Fatal(err)
	}
	before := fileSize(t, path)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(keep[1:]), slices.Delete(slices.Clone(during), 5, 6)...)
	if got := allSeqs(t, b); !slices.Equal(got, want) {
		t.Errorf("after the compaction pending %v, want %v", got, want)
	}
	if after := fileSize(t, path); after*4 > before {
		t.Errorf("file %d B after compaction, was %d B", after, before)
	}
	mustClose(t, b)
	b2, err := Open(path, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, b2)
	if got := allSeqs(t, b2); !slices.Equal(got, want) {
		t.Errorf("reopened after the compaction pending %v, want %v", got, want)
	}
}
