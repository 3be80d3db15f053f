package buffer

import (
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Records acked after they were committed are deleted by the next commit. While that commit's transaction runs
// (an fsync can take long on a loaded gateway), readers must still see them as acked: otherwise the uplink reads
// them as pending and sends them again, a duplicate for every record acked in the interval.
func TestAckedStayAckedWhileCommitDeletesThem(t *testing.T) {
	b, _ := openTest(t, quietOptions())
	for i := range 10 {
		if _, err := b.Append(func(seq uint64) ([]byte, error) { return fmt.Appendf(nil, "r%d", i), nil }); err != nil {
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
	inCommit := make(chan struct{})
	release := make(chan struct{})
	b.commitHook = func(*bolt.Tx) error {
		close(inCommit)
		<-release
		return nil
	}
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
