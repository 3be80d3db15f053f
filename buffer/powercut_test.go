//go:build linux && (amd64 || arm64)

package buffer

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fleetedge/gps-agent/internal/cutfs"
	"github.com/fleetedge/gps-agent/internal/cutfs/cutfstest"
	bolt "go.etcd.io/bbolt"
)

// lazyCut loses everything not synced (LazyFS).
var lazyCut = cutfs.CutPlan{Seed: 1}

// appendCommitted appends n records and commits them: Commit returning nil is the promise a cut must keep.
func appendCommitted(t *testing.T, b *Buffer, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for range n {
		seqs = append(seqs, mustAppend(t, b, "committed"))
	}
	commit(t, b)
	return seqs
}

// reopenAfterCut reopens the buffer after a cut and a remount, and checks that nothing committed was lost, no
// seq will repeat, and nothing was moved aside.
func reopenAfterCut(t *testing.T, path string, committed []uint64) *Buffer {
	t.Helper()
	b, err := Open(path, testOptions(t))
	if err != nil {
		t.Fatalf("Open after the cut: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	got := allSeqs(t, b)
	for _, s := range committed {
		if _, ok := slices.BinarySearch(got, s); !ok {
			t.Fatalf("seq %d was committed before the cut but is gone (have %v)", s, got)
		}
	}
	if st := b.Stats(); st.Quarantined != 0 || st.NextSeq <= slices.Max(committed) {
		t.Fatalf("after the cut: quarantined %d, next seq %d (handed out up to %d)", st.Quarantined, st.NextSeq, slices.Max(committed))
	}
	return b
}

// The buffer's directory, created by the first start, survives a power cut: Open syncs the parent of each
// directory it creates. Before, a cut after the first commits took the directory, the database and the seq
// sidecar with it, and the next start handed out the same seqs again.
func TestPowerCutKeepsNewDirectory(t *testing.T) {
	fsys := cutfstest.New(t)
	path := filepath.Join(fsys.Dir, "var", "lib", "gps-agent", "buffer.db")
	b, err := Open(path, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	seqs := appendCommitted(t, b, 20)
	fsys.Cut(lazyCut)
	fsys.Mount()
	reopenAfterCut(t, path, seqs)
}

// A power cut while bbolt creates the file leaves it empty, short, or with some of its first four pages missing
// or torn: not damage. Open starts it anew, moves nothing aside, counts it apart from quarantines, and works.
// The shapes come from the power-cut filesystem: bbolt's initial four pages written, the name on disk, the
// pages not synced, and a seeded subset of them (one torn) reaching the disk.
func TestPowerCutDuringCreation(t *testing.T) {
	image := initImage(t)
	fsys := cutfstest.New(t)
	path := filepath.Join(fsys.Dir, "buffer.db")
	shapes := map[int64]int{}
	for seed := range uint64(12) {
		if err := os.WriteFile(path, image, 0o640); err != nil { // written, not synced
			t.Fatal(err)
		}
		syncPath(t, fsys.Dir) // the name is on disk
		rep := fsys.Cut(cutfs.CutPlan{Seed: seed, Pages: float64(seed%4) / 4, Torn: seed%2 == 0})
		fsys.Mount()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		shapes[fi.Size()]++
		b, err := Open(path, testOptions(t))
		if err != nil {
			t.Fatalf("seed %d (%+v): Open: %v", seed, rep, err)
		}
		st := b.Stats()
		if st.Quarantined != 0 {
			t.Errorf("seed %d (%+v): a file cut during creation was moved aside", seed, rep)
		}
		if st.Unfinished+st.Quarantined == 0 && fi.Size() < int64(len(image)) {
			t.Errorf("seed %d: a short file (%d B) was opened as it was", seed, fi.Size())
		}
		mustAppend(t, b, "after")
		mustClose(t, b)
		checkDB(t, path)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) > 0 {
			t.Fatalf("seed %d: moved aside: %v", seed, aside)
		}
	}
	t.Logf("file sizes left by the cuts: %v", shapes)
	if shapes[0] == 0 || len(shapes) < 3 {
		t.Errorf("the cuts left too few shapes to prove anything: %v", shapes)
	}
}

// initImage returns the four pages bbolt writes when it creates a file.
func initImage(t *testing.T) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "init.db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4*os.Getpagesize() {
		t.Fatalf("bbolt's new file has %d bytes, want 4 pages", len(b))
	}
	return b
}

func syncPath(t *testing.T, dir string) {
	t.Helper()
	if err := syncDir(dir); err != nil {
		t.Fatal(err)
	}
}
