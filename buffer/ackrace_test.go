package buffer

import (
	"fmt"
	"slices"
	"testing"
)

// Records acked after they were committed are deleted by the next commit. While that commit's transaction runs
// (an fsync can take long on a loaded gateway), readers must still see them as acked: otherwise the uplink reads
// them as pending and sends them again, a duplicate for every record acked in the interval.
func TestAckedStayAckedWhileCommitDeletesThem(t *testing.T) {
	b, _ := openTest(t, quietOptions())
	for i := range 10 {
		if _, err := b.Append(b.now(), func(seq uint64) ([]byte, error) { return fmt.Appendf(nil, "r%d", i), nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(1, 2, 3, 4, 5); err != nil {
		t.Fatal(err)
	}
	seen := func() (oldest, newest []uint64, pending int) {
		o, err := b.Oldest(0, 100)
		if err != nil {
			t.Fatal(err)
		}
		n, err := b.Newest(100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range o {
			oldest = append(oldest, r.Seq)
		}
		for _, r := range n {
			newest = append(newest, r.Seq)
		}
		return oldest, newest, b.Stats().Pending
	}
	inCommit, release := holdCommit(b)
	done := make(chan error)
	go func() { done <- b.Commit() }()
	<-inCommit
	oldest, newest, pending := seen() // while the commit that deletes 1..5 is in flight
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b.commitHook = nil
	if fmt.Sprint(oldest) != "[6 7 8 9 10]" || fmt.Sprint(newest) != "[10 9 8 7 6]" || pending != 5 {
		t.Errorf("during the commit: oldest %v, newest %v, pending %d; want 6..10 only", oldest, newest, pending)
	}
	oldest, newest, pending = seen()
	if fmt.Sprint(oldest) != "[6 7 8 9 10]" || fmt.Sprint(newest) != "[10 9 8 7 6]" || pending != 5 {
		t.Errorf("after the commit: oldest %v, newest %v, pending %d; want 6..10 only", oldest, newest, pending)
	}
}

// A record acked while still in the tail, during the transaction of a commit that writes it, must not be read
// as pending when that commit settles between a reader's look at the tail and its disk scan: the tail no longer
// shows it, the disk has it, and the reader's copy of the acked set predates the commit moving it there.
func TestTailAckedDuringCommitStaysAcked(t *testing.T) {
	readers := map[string]func(b *Buffer) ([]Record, error){
		"oldest": func(b *Buffer) ([]Record, error) { return b.Oldest(0, 100) },
		"newest": func(b *Buffer) ([]Record, error) { return b.Newest(100) },
	}
	for name, read := range readers {
		t.Run(name, func(t *testing.T) {
			b, _ := openTest(t, quietOptions())
			for range 3 {
				mustAppend(t, b, "r")
			}
			inCommit, release := holdCommit(b)
			done := make(chan error, 1)
			go func() { done <- b.Commit() }() // writes 1..3
			<-inCommit
			if err := b.Ack(2); err != nil { // still in the tail: the commit is writing it
				t.Fatal(err)
			}
			var commitErr error
			b.readHook = func() { // the commit settles between the reader's tail look and its disk scan
				close(release)
				commitErr = <-done
			}
			got, err := read(b)
			b.readHook, b.commitHook = nil, nil
			if err != nil || commitErr != nil {
				t.Fatal(err, commitErr)
			}
			if slices.Contains(seqsOf(got), 2) {
				t.Errorf("read %v: seq 2 was acked, reading it again sends it twice", seqsOf(got))
			}
			if got := allSeqs(t, b); !slices.Equal(got, []uint64{1, 3}) {
				t.Errorf("after the commit pending %v, want [1 3]", got)
			}
		})
	}
}
