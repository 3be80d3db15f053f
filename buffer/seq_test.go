package buffer

import (
	"errors"
	"fmt"
	"math"
	"os"
	"testing"

	bolt "go.etcd.io/bbolt"
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

// TestSidecarFailureHoldsTheMark: while the sidecar cannot be written, Append hands out no seq past the sidecar's
// mark (it fails instead, once the reserved block is used), so losing the database later still repeats nothing.
// Once the sidecar can be written again, reservations and appends resume.
func TestSidecarFailureHoldsTheMark(t *testing.T) {
	b, path, opts := openBlock(t, 8)
	// A directory where the sidecar's temp file goes makes every sidecar write fail.
	if err := os.Mkdir(path+sidecarSuffix+".tmp", 0o700); err != nil {
		t.Fatal(err)
	}
	var last uint64
	var refused error
	for range 3 * opts.SeqBlock {
		s, err := b.Append(b.now(), enc("p"))
		if err != nil {
			refused = err
			break
		}
		last = s
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	side, err := readSidecar(path + sidecarSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if last > side {
		t.Fatalf("seq %d handed out past the sidecar's mark %d", last, side)
	}
	if !errors.Is(refused, ErrSeqUnavailable) {
		t.Fatalf("Append past the sidecar's mark = %v, want ErrSeqUnavailable", refused)
	}
	if err := os.Remove(path + sidecarSuffix + ".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if s := mustAppend(t, b, "again"); s != last+1 {
		t.Errorf("after the sidecar recovered Append = %d, want %d", s, last+1)
	}
	crash(t, b)
	mustRemove(t, path) // the database is lost: only the sidecar remembers
	b2, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, b2)
	if next := b2.Stats().NextSeq; next <= last+1 {
		t.Errorf("after losing the database NextSeq = %d, but %d was handed out", next, last+1)
	}
}

// TestSeqMarksNearTheEnd: no mark, however large, makes seqs wrap to 0 or leave the range downstream stores
// (a signed 64-bit integer). A mark beyond that range is damage: a sidecar holding one is ignored like an
// unreadable one, a database holding one is moved aside; at the very end of the range Append refuses.
func TestSeqMarksNearTheEnd(t *testing.T) {
	tests := []struct {
		name     string
		sidecar  uint64 // written after the first run's Close; 0: keep
		dbMark   uint64 // meta/seq_reserved written after the first run's Close; 0: keep
		wantSeqs int    // appends that succeed after the reopen (of 4)
		wantQuar uint64
	}{
		{name: "sidecar at the last uint64", sidecar: math.MaxUint64, wantSeqs: 4},
		{name: "sidecar past the seq range", sidecar: maxSeq + 1, wantSeqs: 4},
		{name: "sidecar two before the end", sidecar: maxSeq - 2, wantSeqs: 2},
		{name: "database mark at the last uint64", dbMark: math.MaxUint64, wantSeqs: 4, wantQuar: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, path, opts := openBlock(t, 8)
			first := mustAppend(t, b, "p")
			mustClose(t, b)
			if tt.sidecar != 0 {
				if err := os.WriteFile(path+sidecarSuffix, fmt.Appendf(nil, "%s\nreserved %d\n", sidecarMagic, tt.sidecar), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.dbMark != 0 {
				setMeta(t, path, keyReserved, tt.dbMark)
			}
			b2, err := Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer mustClose(t, b2)
			var got []uint64
			for range 4 {
				s, err := b2.Append(b2.now(), enc("q"))
				if err != nil {
					if !errors.Is(err, ErrSeqUnavailable) {
						t.Fatalf("Append = %v, want ErrSeqUnavailable", err)
					}
					continue
				}
				got = append(got, s)
				if s <= first || s > maxSeq {
					t.Errorf("Append = %d: not in %d..%d", s, first+1, uint64(maxSeq))
				}
			}
			if len(got) != tt.wantSeqs {
				t.Errorf("appends %v, want %d of them to succeed", got, tt.wantSeqs)
			}
			if q := b2.Stats().Quarantined; q != tt.wantQuar {
				t.Errorf("quarantined %d, want %d", q, tt.wantQuar)
			}
		})
	}
}

// setMeta writes one meta value into a closed database.
func setMeta(t *testing.T, path string, key []byte, v uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(key, u64(v)) }); err != nil {
		t.Fatal(err)
	}
}
