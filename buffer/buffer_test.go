package buffer

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReadAck runs each read/ack case three ways: all records in the tail,
// all committed, and half of each, because reads merge both.
func TestReadAck(t *testing.T) {
	type step struct {
		ack        []uint64
		oldestFrom uint64
		oldestMax  int
		wantOldest []uint64
		newestMax  int
		wantNewest []uint64
	}
	tests := []struct {
		name string
		n    int // records appended, seqs 1..n
		step step
	}{
		{name: "oldest all", n: 6, step: step{oldestMax: 100, wantOldest: seqRange(1, 6)}},
		{name: "oldest after cursor bounded by max", n: 6, step: step{oldestFrom: 2, oldestMax: 2, wantOldest: []uint64{3, 4}}},
		{name: "oldest after last is empty", n: 6, step: step{oldestFrom: 6, oldestMax: 10, wantOldest: nil}},
		{name: "oldest across tail and disk", n: 6, step: step{oldestFrom: 2, oldestMax: 3, wantOldest: []uint64{3, 4, 5}}},
		{name: "newest descending", n: 6, step: step{newestMax: 4, wantNewest: []uint64{6, 5, 4, 3}}},
		{name: "newest more than pending", n: 3, step: step{newestMax: 10, wantNewest: []uint64{3, 2, 1}}},
		{name: "ack out of order", n: 6, step: step{ack: []uint64{5, 1, 3}, oldestMax: 10, wantOldest: []uint64{2, 4, 6}, newestMax: 2, wantNewest: []uint64{6, 4}}},
		{name: "ack unknown and repeated seqs ignored", n: 4, step: step{ack: []uint64{0, 2, 2, 99, 1 << 60}, oldestMax: 10, wantOldest: []uint64{1, 3, 4}, newestMax: 10, wantNewest: []uint64{4, 3, 1}}},
		{name: "ack everything", n: 4, step: step{ack: []uint64{4, 3, 2, 1}, oldestMax: 10, wantOldest: nil, newestMax: 10, wantNewest: nil}},
	}
	modes := []struct {
		name      string
		committed int // how many of the first records are committed before reading
	}{{"tail", 0}, {"disk", 1 << 30}, {"mixed", 3}}
	for _, tt := range tests {
		for _, m := range modes {
			t.Run(tt.name+"/"+m.name, func(t *testing.T) {
				b, _ := openTest(t, testOptions(t))
				for i := 1; i <= tt.n; i++ {
					mustAppend(t, b, "x")
					if i == m.committed || (m.committed > tt.n && i == tt.n) {
						if err := b.Commit(); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := b.Ack(tt.step.ack...); err != nil {
					t.Fatalf("Ack: %v", err)
				}
				for round := 0; round < 2; round++ { // before and after the acks are committed
					if tt.step.oldestMax > 0 {
						got, err := b.Oldest(tt.step.oldestFrom, tt.step.oldestMax)
						if err != nil {
							t.Fatal(err)
						}
						checkData(t, got)
						if !slices.Equal(seqsOf(got), tt.step.wantOldest) {
							t.Errorf("round %d: Oldest(%d, %d) = %v, want %v", round, tt.step.oldestFrom, tt.step.oldestMax, seqsOf(got), tt.step.wantOldest)
						}
					}
					if tt.step.newestMax > 0 {
						got, err := b.Newest(tt.step.newestMax)
						if err != nil {
							t.Fatal(err)
						}
						checkData(t, got)
						if !slices.Equal(seqsOf(got), tt.step.wantNewest) {
							t.Errorf("round %d: Newest(%d) = %v, want %v", round, tt.step.newestMax, seqsOf(got), tt.step.wantNewest)
						}
					}
					st := b.Stats()
					want := tt.n - countKnown(tt.step.ack, uint64(tt.n))
					if st.Pending != want {
						t.Errorf("round %d: Stats.Pending = %d, want %d", round, st.Pending, want)
					}
					if err := b.Commit(); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	}
}

func countKnown(acks []uint64, n uint64) int {
	seen := map[uint64]bool{}
	for _, a := range acks {
		if a >= 1 && a <= n {
			seen[a] = true
		}
	}
	return len(seen)
}

func TestReturnedDataIsACopy(t *testing.T) {
	b, _ := openTest(t, testOptions(t))
	mustAppend(t, b, "tail")
	got, err := b.Oldest(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	got[0].Data[0] = 'X'
	again, _ := b.Oldest(0, 1)
	if again[0].Data[0] == 'X' {
		t.Error("mutating a tail record's Data changed the buffer")
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	got, _ = b.Oldest(0, 1)
	if err := b.Close(); err != nil { // unmaps the file
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got[0].Data), "1:tail") {
		t.Errorf("committed record data after Close = %q", got[0].Data)
	}
}

// TestAckedBeforeCommitNeverWritten: an online gateway writes almost nothing.
func TestAckedBeforeCommitNeverWritten(t *testing.T) {
	b, path := openTest(t, testOptions(t))
	st0 := b.db.Stats()
	before := st0.TxStats.GetWrite()
	seq := mustAppend(t, b, "NEVER-ON-DISK")
	if err := b.Ack(seq); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	st1 := b.db.Stats()
	if w := st1.TxStats.GetWrite(); w != before {
		t.Errorf("bbolt page writes went from %d to %d for a record acked before commit", before, w)
	}
	if st := b.Stats(); st.Commits != 0 || st.Pending != 0 {
		t.Errorf("Stats = %+v, want no commit and nothing pending", st)
	}
	// The same check sees a record that was committed.
	mustAppend(t, b, "IS-ON-DISK")
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if !fileContains(t, path, "IS-ON-DISK") {
		t.Fatal("committed record not found in the file: the check below proves nothing")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if fileContains(t, path, "NEVER-ON-DISK") {
		t.Error("record acked before commit was written to the file")
	}
}

// TestGroupCommit: Run commits the tail each interval; what was committed
// survives a crash, what was only in the tail does not, and Close loses nothing.
func TestGroupCommit(t *testing.T) {
	opts := testOptions(t)
	opts.CommitInterval = 5 * time.Millisecond
	b, path := openTest(t, opts)
	committed := make(chan uint64, 100)
	b.afterCommit = func(last uint64) { committed <- last }

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	for range 3 {
		mustAppend(t, b, "grouped")
	}
	waitCommitted(ctx, t, committed, 3)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st := b.Stats(); st.Tail != 0 || st.Pending != 3 {
		t.Errorf("after Run: Stats = %+v, want 3 pending, 0 in tail", st)
	}

	// Now without a commit loop: these stay in the tail.
	mustAppend(t, b, "tail-only")
	crash(t, b)
	b2, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := allSeqs(t, b2); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("after crash: pending %v, want [1 2 3] (seq 4 was only in the tail)", got)
	}
	if st := b2.Stats(); st.NextSeq <= 4 {
		t.Errorf("after crash NextSeq = %d, must not reuse 4", st.NextSeq)
	}
	// A clean Close keeps the tail.
	s := mustAppend(t, b2, "closed")
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	b3, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b3.Close()
	if got := allSeqs(t, b3); !slices.Contains(got, s) {
		t.Errorf("after Close: pending %v lacks %d", got, s)
	}
}

func waitCommitted(ctx context.Context, t *testing.T, ch <-chan uint64, seq uint64) {
	t.Helper()
	for {
		select {
		case last := <-ch:
			if last >= seq {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no commit covering seq %d: %v", seq, ctx.Err())
		}
	}
}

func TestRunTwice(t *testing.T) {
	b, _ := openTest(t, testOptions(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	// Wait until the first Run holds the flag.
	for {
		b.mu.Lock()
		r := b.running
		b.mu.Unlock()
		if r {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("Run did not start")
		case <-time.After(time.Millisecond):
		}
	}
	if err := b.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNotify(t *testing.T) {
	b, _ := openTest(t, testOptions(t))
	select {
	case <-b.Notify():
		t.Fatal("notified before any Append")
	default:
	}
	mustAppend(t, b, "a")
	mustAppend(t, b, "b") // must not block although nobody reads
	select {
	case <-b.Notify():
	default:
		t.Fatal("no notification after Append")
	}
}

func TestEncodeErrorDoesNotConsumeSeq(t *testing.T) {
	b, _ := openTest(t, testOptions(t))
	boom := errors.New("boom")
	if _, err := b.Append(b.now(), func(uint64) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("Append = %v, want boom", err)
	}
	if s := mustAppend(t, b, "ok"); s != 1 {
		t.Errorf("seq after failed encode = %d, want 1", s)
	}
}

func TestClosed(t *testing.T) {
	b, err := Open(t.TempDir()+"/b.db", testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := b.Append(b.now(), enc("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v", err)
	}
	if _, err := b.Oldest(0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Oldest after Close = %v", err)
	}
	if err := b.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v", err)
	}
}

func TestOpenCreatesDirs(t *testing.T) {
	path := t.TempDir() + "/a/b/c/buffer.db"
	b, err := Open(path, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := os.Stat(path); err != nil {
		t.Error(err)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Options)
		wantErr string
	}{
		{name: "defaults", mod: func(*Options) {}},
		{name: "zero means default", mod: func(o *Options) { *o = Options{} }},
		{name: "negative interval", mod: func(o *Options) { o.CommitInterval = -1 }, wantErr: "CommitInterval"},
		{name: "negative max bytes", mod: func(o *Options) { o.MaxBytes = -1 }, wantErr: "MaxBytes"},
		{name: "negative max age", mod: func(o *Options) { o.MaxAge = -time.Hour }, wantErr: "MaxAge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			tt.mod(&o)
			err := o.Validate()
			if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestReadWhileCommitting commits between a read's look at the tail and its
// look at the disk: every record must come back exactly once.
func TestReadWhileCommitting(t *testing.T) {
	tests := []struct {
		name string
		read func(b *Buffer) ([]Record, error)
		want []uint64
	}{
		{name: "oldest", read: func(b *Buffer) ([]Record, error) { return b.Oldest(1, 10) }, want: []uint64{2, 3, 4, 5, 6}},
		{name: "newest", read: func(b *Buffer) ([]Record, error) { return b.Newest(10) }, want: []uint64{6, 5, 4, 3, 2, 1}},
		{name: "newest bounded", read: func(b *Buffer) ([]Record, error) { return b.Newest(4) }, want: []uint64{6, 5, 4, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := openTest(t, testOptions(t))
			mustAppend(t, b, "d")
			commit(t, b) // seq 1 on disk
			for range 5 {
				mustAppend(t, b, "t") // seqs 2..6 in the tail
			}
			b.readHook = func() {
				b.readHook = nil
				commit(t, b)
			}
			got, err := tt.read(b)
			if err != nil {
				t.Fatal(err)
			}
			if b.Stats().Tail != 0 {
				t.Fatal("hook did not commit")
			}
			if !slices.Equal(seqsOf(got), tt.want) {
				t.Errorf("got %v, want %v", seqsOf(got), tt.want)
			}
		})
	}
}
