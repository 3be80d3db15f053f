package buffer

import (
	"os"
	"testing"
)

// TestSeqNeverRepeats reopens the buffer after each kind of stop and checks
// that the next seq is past every seq handed out, and that a clean stop
// leaves no gap.
func TestSeqNeverRepeats(t *testing.T) {
	tests := []struct {
		name     string
		seqBlock uint64
		appends  int
		commit   bool                                       // commit before stopping
		stop     func(t *testing.T, b *Buffer, path string) // how the first run ends
		wantNext func(last, hwm uint64) uint64              // 0: only require > last
	}{
		{
			name: "clean close continues without gap", seqBlock: 100, appends: 5,
			stop:     func(t *testing.T, b *Buffer, _ string) { mustClose(t, b) },
			wantNext: func(last, _ uint64) uint64 { return last + 1 },
		},
		{
			name: "crash skips the reserved block", seqBlock: 100, appends: 5, commit: true,
			stop:     func(t *testing.T, b *Buffer, _ string) { crash(t, b) },
			wantNext: func(_, hwm uint64) uint64 { return hwm + 1 },
		},
		{
			name: "crash with nothing committed", seqBlock: 100, appends: 5,
			stop: func(t *testing.T, b *Buffer, _ string) { crash(t, b) },
		},
		{
			name: "crash after several blocks reserved synchronously", seqBlock: 4, appends: 23,
			stop: func(t *testing.T, b *Buffer, _ string) { crash(t, b) },
		},
		{
			name: "database deleted after clean close", seqBlock: 100, appends: 5,
			stop: func(t *testing.T, b *Buffer, path string) {
				mustClose(t, b)
				mustRemove(t, path)
			},
		},
		{
			name: "database deleted after crash", seqBlock: 100, appends: 5, commit: true,
			stop: func(t *testing.T, b *Buffer, path string) {
				crash(t, b)
				mustRemove(t, path)
			},
		},
		{
			name: "database replaced by garbage", seqBlock: 100, appends: 5,
			stop: func(t *testing.T, b *Buffer, path string) {
				mustClose(t, b)
				if err := os.WriteFile(path, []byte("not a database, not at all, just some bytes"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "sidecar deleted after crash", seqBlock: 100, appends: 5, commit: true,
			stop: func(t *testing.T, b *Buffer, path string) {
				crash(t, b)
				mustRemove(t, path+sidecarSuffix)
			},
			wantNext: func(_, hwm uint64) uint64 { return hwm + 1 },
		},
		{
			name: "sidecar garbled after clean close", seqBlock: 100, appends: 5,
			stop: func(t *testing.T, b *Buffer, path string) {
				mustClose(t, b)
				if err := os.WriteFile(path+sidecarSuffix, []byte("\x00\x01garbage"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantNext: func(last, _ uint64) uint64 { return last + 1 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(t)
			opts.SeqBlock = tt.seqBlock
			path := t.TempDir() + "/buffer.db"
			b, err := Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			var last uint64
			for range tt.appends {
				s := mustAppend(t, b, "p")
				if s <= last {
					t.Fatalf("seq %d after %d", s, last)
				}
				last = s
			}
			if tt.commit {
				if err := b.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			hwm := b.Stats().ReservedSeq
			if hwm < last {
				t.Fatalf("handed out %d beyond reservation %d", last, hwm)
			}
			tt.stop(t, b, path)

			b2, err := Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { mustClose(t, b2); checkDB(t, path) }()
			next := b2.Stats().NextSeq
			if next <= last {
				t.Fatalf("after reopen NextSeq = %d, but %d was handed out", next, last)
			}
			if tt.wantNext != nil {
				if want := tt.wantNext(last, hwm); next != want {
					t.Errorf("after reopen NextSeq = %d, want %d", next, want)
				}
			}
			if s := mustAppend(t, b2, "again"); s != next {
				t.Errorf("Append = %d, Stats said %d", s, next)
			}
		})
	}
}

// TestReserveAhead: the commit loop reserves the next block before the
// current one runs out, durably in both the database and the sidecar, so
// Append does not have to.
func TestReserveAhead(t *testing.T) {
	opts := testOptions(t)
	opts.SeqBlock = 10
	b, path := openTest(t, opts)
	if got := b.Stats().ReservedSeq; got != 10 {
		t.Fatalf("after Open ReservedSeq = %d, want 10", got)
	}
	for i := 1; i <= 100; i++ {
		mustAppend(t, b, "r")
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		st := b.Stats()
		if remaining := st.ReservedSeq - (st.NextSeq - 1); remaining <= opts.SeqBlock/2 {
			t.Fatalf("after append %d: only %d seqs reserved ahead (%+v)", i, remaining, st)
		}
		side, err := readSidecar(path + sidecarSuffix)
		if err != nil {
			t.Fatal(err)
		}
		if side != st.ReservedSeq {
			t.Fatalf("after append %d: sidecar says %d, ReservedSeq %d", i, side, st.ReservedSeq)
		}
	}
	if b.syncReserves != 0 {
		t.Errorf("Append reserved synchronously %d times", b.syncReserves)
	}
}

func mustClose(t testing.TB, b *Buffer) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func mustRemove(t testing.TB, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
