package buffer

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestOpenReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b, err := Open(path, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		mustAppend(t, b, "ro")
	}
	if err := b.Ack(2); err != nil {
		t.Fatal(err)
	}
	mustClose(t, b)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	r, err := OpenReadOnly(path, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := allSeqs(t, r); !slices.Equal(got, []uint64{1, 3, 4, 5}) {
		t.Errorf("read-only pending %v", got)
	}
	newest, err := r.Newest(1)
	if err != nil || len(newest) != 1 || newest[0].Seq != 5 {
		t.Errorf("Newest(1) = %v, %v", seqsOf(newest), err)
	}
	if st := r.Stats(); st.NextSeq != 6 || st.Pending != 4 {
		t.Errorf("read-only Stats = %+v, want NextSeq 6, 4 pending", st)
	}
	if _, err := r.Append(r.now(), enc("x")); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Append = %v", err)
	}
	if err := r.Ack(1); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Ack = %v", err)
	}
	if err := r.Commit(); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Commit = %v", err)
	}
	mustClose(t, r)
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("read-only open changed the file")
	}

	// While a writer holds the file, read-only open fails instead of hanging.
	w, err := Open(path, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := OpenReadOnly(path, testOptions(t)); err == nil {
		t.Error("OpenReadOnly succeeded while a writer held the file")
	}
}

func TestOpenReadOnlyDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	_, ps := makeDB(t, path, 300)
	overwritePages(0, 1)(t, path, ps)
	if _, err := OpenReadOnly(path, testOptions(t)); !errors.Is(err, errCorrupt) {
		t.Errorf("OpenReadOnly of damaged file = %v", err)
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 0 {
		t.Errorf("read-only open moved the file aside: %v", aside)
	}
}

// The read-only view reports the seq the next Open continues from, also when the database was restored from an
// older copy and the sidecar is ahead of it.
func TestReadOnlyNextSeqMatchesOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "buffer.db")
	opts := quietOptions()
	opts.SeqBlock = 10
	appendClose := func(n int) {
		b, err := Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			if _, err := b.Append(b.now(), func(seq uint64) ([]byte, error) { return []byte("x"), nil }); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	appendClose(3)
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	appendClose(40)                                        // reserves several more blocks: the sidecar moves on
	if err := os.WriteFile(path, old, 0o640); err != nil { // restored from the old copy
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	roNext := ro.Stats().NextSeq
	ro.Close()
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if next := b.Stats().NextSeq; roNext != next || next <= 43 {
		t.Errorf("read-only NextSeq %d, Open continues from %d (must be past 43, the seqs already handed out)", roNext, next)
	}
}
