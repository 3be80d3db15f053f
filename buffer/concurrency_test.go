package buffer

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentAppendReadAck runs a receiver, an uplink (newest first, then
// oldest) and the commit loop at once, as the agent does, under the race
// detector. Every appended record must be delivered at least once, and
// everything must end acked.
func TestConcurrentAppendReadAck(t *testing.T) {
	const n = 3000
	opts := testOptions(t)
	opts.CommitInterval = time.Millisecond
	opts.SeqBlock = 50
	b, _ := openTest(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- b.Run(runCtx) }()

	var appendErr error
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		for i := range n {
			if _, err := b.Append(b.now(), enc("c")); err != nil {
				appendErr = err
				return
			}
			if i%300 == 0 {
				// Swap the file under the readers and the commit loop.
				if err := b.compact(ctx); err != nil {
					appendErr = err
					return
				}
			}
		}
	}()

	seen := make(map[uint64]bool)
	var mu sync.Mutex
	uplink := func() error {
		var cursor uint64
		for {
			newest, err := b.Newest(20)
			if err != nil {
				return err
			}
			oldest, err := b.Oldest(cursor, 50)
			if err != nil {
				return err
			}
			batch := append(newest, oldest...)
			for _, r := range batch {
				if !strings.HasSuffix(string(r.Data), ":c") {
					return errors.New("bad data " + string(r.Data))
				}
				mu.Lock()
				seen[r.Seq] = true
				mu.Unlock()
			}
			if len(oldest) > 0 {
				cursor = oldest[len(oldest)-1].Seq
			}
			if err := b.Ack(seqsOf(batch)...); err != nil {
				return err
			}
			select {
			case <-appended:
				if st := b.Stats(); st.Pending == 0 {
					return nil
				}
				if len(batch) == 0 {
					cursor = 0 // something was missed by the cursor: rescan
				}
			case <-ctx.Done():
				return ctx.Err()
			case <-b.Notify():
			case <-time.After(time.Millisecond):
			}
		}
	}
	if err := uplink(); err != nil {
		t.Fatalf("uplink: %v (stats %+v)", err, b.Stats())
	}
	<-appended
	if appendErr != nil {
		t.Fatal(appendErr)
	}
	stopRun()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	for s := uint64(1); s <= n; s++ {
		if !seen[s] {
			t.Fatalf("seq %d never delivered", s)
		}
	}
	commit(t, b)
	if got := allSeqs(t, b); len(got) != 0 {
		t.Errorf("%d records pending after everything was acked", len(got))
	}
	if st := b.Stats(); st.Pending != 0 || st.PendingBytes != 0 {
		t.Errorf("Stats after acking everything = %+v", st)
	}
	t.Logf("commits: %d", b.Stats().Commits)
}

// TestCompaction: after a backlog drains, the file is compacted into a
// second file and renamed over the first; records and seqs carry on.
func TestCompaction(t *testing.T) {
	opts := testOptions(t)
	b, path := openTest(t, opts)
	b.compactMin = 64 << 10
	pad := strings.Repeat("z", 200)
	var keep []uint64
	for i := range 5000 {
		s := mustAppend(t, b, pad)
		if i%1000 == 0 {
			keep = append(keep, s)
		}
	}
	commit(t, b)
	if ok, err := b.compactIfWorthIt(context.Background()); ok || err != nil {
		t.Fatalf("compacted a full file: %v %v", ok, err)
	}
	var ack []uint64
	for s := uint64(1); s <= 5000; s++ {
		if !containsSeq(keep, s) {
			ack = append(ack, s)
		}
	}
	if err := b.Ack(ack...); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	before := fileSize(t, path)
	ok, err := b.compactIfWorthIt(context.Background())
	if err != nil || !ok {
		t.Fatalf("compactIfWorthIt = %v, %v; want a compaction (file %d B)", ok, err, before)
	}
	after := fileSize(t, path)
	if after*4 > before {
		t.Errorf("file %d B after compaction, was %d B", after, before)
	}
	if st := b.Stats(); st.Compactions != 1 {
		t.Errorf("Compactions = %d", st.Compactions)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	if got := allSeqs(t, b); !equalU64(got, keep) {
		t.Errorf("after compaction pending %v, want %v", got, keep)
	}
	s := mustAppend(t, b, "post")
	commit(t, b)
	if s != 5001 {
		t.Errorf("seq after compaction = %d, want 5001", s)
	}
}

func containsSeq(s []uint64, v uint64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestOldestCursorNeverSkips: a reader paging with Oldest(cursor) while
// records are appended and committed underneath sees every seq exactly once,
// in order. A record moving from the tail to disk between the reader's two
// looks must not fall through.
func TestOldestCursorNeverSkips(t *testing.T) {
	const n = 4000
	opts := testOptions(t)
	opts.CommitInterval = 200 * time.Microsecond
	// Small blocks: Append waits for a reservation now and then, which keeps
	// the appender from finishing before Run has committed twice.
	opts.SeqBlock = 1000
	b, _ := openTest(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- b.Run(runCtx) }()
	// The appender goes on past n until Run has committed a few times while
	// the reader reads (a loaded machine may append n before the second).
	var appended atomic.Uint64
	appendDone := make(chan error, 1)
	go func() {
		for i := 0; i < n || b.Stats().Commits < 3 && i < 50*n; i++ {
			if _, err := b.Append(b.now(), enc("o")); err != nil {
				appendDone <- err
				return
			}
			appended.Store(uint64(i + 1))
		}
		appendDone <- nil
	}()
	var cursor uint64
	for finished := false; !finished || cursor < appended.Load(); {
		select {
		case err := <-appendDone:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
		default:
		}
		rs, err := b.Oldest(cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Seq != cursor+1 {
				t.Fatalf("after seq %d Oldest returned %d: skipped or repeated", cursor, r.Seq)
			}
			cursor = r.Seq
		}
		if len(rs) == 0 {
			select {
			case <-b.Notify():
			case <-time.After(100 * time.Microsecond):
			case <-ctx.Done():
				t.Fatalf("stuck at seq %d: %v", cursor, ctx.Err())
			}
		}
	}
	stopRun()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Commits < 3 {
		t.Errorf("only %d commits: the test did not move records to disk while reading", st.Commits)
	}
}
