package buffer

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// backlogFile writes n committed fixes of 250 B to a new buffer at path and
// stops it cleanly.
func backlogFile(t *testing.T, path string, n int) {
	t.Helper()
	b, err := Open(path, quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	// A few records a commit, as at 1 Hz: the backlog goes to bucket
	// records, a tree with branches (a commit of many would be groups).
	for i := range n {
		if _, err := b.Append(b.now(), fixEncoder); err != nil {
			t.Fatal(err)
		}
		if i%4 == 3 {
			commit(t, b)
		}
	}
	commit(t, b)
	mustClose(t, b)
}

// gatedCheck returns options whose background check covers any file and
// stops before its fifth page until release is closed; held is closed when
// it gets there, and pages counts the pages it read.
func gatedCheck(t *testing.T) (opts Options, held, release chan struct{}, pages *atomic.Int64) {
	opts = testOptions(t)
	opts.bgCheckFrom = 1
	held, release, pages = make(chan struct{}), make(chan struct{}), new(atomic.Int64)
	opts.checkPage = func() error {
		if pages.Add(1) == 5 {
			close(held)
			<-release
		}
		return nil
	}
	return opts, held, release, pages
}

// waitHeld waits until the check is held.
func waitHeld(t *testing.T, held chan struct{}) {
	t.Helper()
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("background check not at its fifth page in 30 s")
	}
}

// waitCheck waits for the background check to end.
func waitCheck(t *testing.T, b *Buffer) {
	t.Helper()
	select {
	case <-b.checkDone:
	case <-time.After(30 * time.Second):
		t.Fatal("background check did not end in 30 s")
	}
}

// TestBackgroundCheckFirstFix proves that a live fix does not wait for the
// check of the whole file: with the check held after four pages, Open
// returns, a fix is appended, read (Newest, Oldest), committed and acked,
// and the backlog is read only once the check has proven it. Before, Open
// read every page first (10 s for a full default buffer at 20 MB/s).
func TestBackgroundCheckFirstFix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	const n = 3000
	backlogFile(t, path, n)

	opts, held, release, pages := gatedCheck(t)
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, b)
	waitHeld(t, held) // the check is under way, and stays so until release
	live, err := b.Append(b.now(), fixEncoder)
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := b.Newest(1); err != nil || !slices.Equal(seqsOf(rs), []uint64{live}) {
		t.Fatalf("Newest(1) during the check = %v, %v; want the live fix %d", seqsOf(rs), err, live)
	}
	commit(t, b)
	if rs, err := b.Oldest(0, 10); err != nil || !slices.Equal(seqsOf(rs), []uint64{live}) {
		t.Fatalf("Oldest during the check = %v, %v; want only the live fix %d (committed), not the unproven backlog", seqsOf(rs), err, live)
	} else {
		checkData(t, rs)
	}
	if err := b.Ack(live); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	if !b.Stats().Checking {
		t.Error("Stats.Checking false while the check is held")
	}
	if got := pages.Load(); got != 5 {
		t.Fatalf("the check read %d pages while held at its fifth", got)
	}

	close(release)
	waitCheck(t, b)
	rs, err := b.Oldest(0, 3)
	if err != nil || !slices.Equal(seqsOf(rs), []uint64{1, 2, 3}) {
		t.Fatalf("Oldest after the check = %v, %v; want the backlog 1 2 3", seqsOf(rs), err)
	}
	checkData(t, rs)
	if st := b.Stats(); st.Pending != n || st.Quarantined != 0 || st.Checking {
		t.Errorf("after the check: pending %d, quarantined %d; want %d, 0", st.Pending, st.Quarantined, n)
	}
}

// TestBackgroundCheckDamage damages a leaf off the rightmost path (which
// Open's quick check proves): Open succeeds, and the background check finds
// the damage while this run has committed records. The file is moved aside,
// this run's records (committed and not) go on in a new file, and the next
// start opens that file without a quarantine: no crash loop, nothing of
// this run lost.
func TestBackgroundCheckDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	backlogFile(t, path, 3000)
	damageFirstLeaf(t, path)

	opts, held, release, _ := gatedCheck(t)
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	waitHeld(t, held)
	var mine []uint64
	for i := range 7 {
		s, err := b.Append(b.now(), fixEncoder)
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, s)
		if i == 4 {
			commit(t, b) // five on disk, two in the tail
		}
	}
	close(release)
	waitCheck(t, b)
	st := b.Stats()
	if st.Quarantined != 1 {
		t.Fatalf("quarantined %d after the check found damage, want 1", st.Quarantined)
	}
	moved, _ := filepath.Glob(path + ".corrupt-*")
	if len(moved) != 1 {
		t.Fatalf("files moved aside: %v, want one", moved)
	}
	if got := allSeqs(t, b); !slices.Equal(got, mine) {
		t.Fatalf("pending after the quarantine %v, want this run's %v", got, mine)
	}
	commit(t, b)
	mustClose(t, b)

	b, err = Open(path, testOptions(t))
	if err != nil {
		t.Fatalf("Open after the quarantine: %v", err)
	}
	defer mustClose(t, b)
	rs, err := b.Oldest(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	checkData(t, rs)
	if st := b.Stats(); !slices.Equal(seqsOf(rs), mine) || st.Quarantined != 0 {
		t.Errorf("next start: pending %v, quarantined %d; want %v, 0", seqsOf(rs), st.Quarantined, mine)
	}
	if s, err := b.Append(b.now(), fixEncoder); err != nil || s <= mine[len(mine)-1] {
		t.Errorf("next seq %d, %v; want past %d", s, err, mine[len(mine)-1])
	}
}

// damageFirstLeaf overwrites the header of the records bucket's leftmost
// leaf, which is not on any rightmost path, with another page's id.
func damageFirstLeaf(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var root uint64
	_ = db.View(func(tx *bolt.Tx) error {
		root = uint64(tx.Bucket(bucketRecords).Root())
		return nil
	})
	page := int64(db.Info().PageSize)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := make([]byte, page)
	if _, err := f.ReadAt(p, int64(root)*page); err != nil {
		t.Fatal(err)
	}
	if ne.Uint16(p[8:])&branchPageFlag == 0 || ne.Uint16(p[10:]) < 2 {
		t.Fatalf("records root %d is not a branch of two or more: the backlog is too small", root)
	}
	leaf := ne.Uint64(p[pageHeaderSize+8:]) // the first branch element's page id
	ne.PutUint64(p[:8], leaf+1)
	if _, err := f.ReadAt(p, int64(leaf)*page); err != nil {
		t.Fatal(err)
	}
	ne.PutUint64(p[:8], leaf+1) // "page N says it is page N+1"
	if _, err := f.WriteAt(p[:8], int64(leaf)*page); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := preflight(path); !errors.Is(err, errCorrupt) {
		t.Fatalf("preflight of the damaged file: %v, want corrupt", err)
	}
}
