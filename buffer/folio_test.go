package buffer

import (
	"fmt"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestCommitWritesOnlyItsPages proves that a commit writes back no more
// than the pages bbolt writes: on a kernel that caches files in large folios
// (ext4, Linux 6.16 and later), writing one page into a cached folio writes
// back the whole folio. bbolt creates its file with one 16 KiB write, so
// before dropCache every commit's meta page cost 16 KiB: 8.8 pages per
// one-record commit for bbolt's 4.8. Needs a disk (write_bytes counts no
// tmpfs writes); on a kernel without large folios it passes either way.
func TestCommitWritesOnlyItsPages(t *testing.T) {
	path := benchDBPath(t)
	b, err := Open(path, quietOptions())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	const commits = 30
	s0 := b.db.Stats()
	w0 := procWriteBytes(t)
	for range commits {
		if _, err := b.Append(b.now(), fixEncoder); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if err := b.Commit(); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
	written := procWriteBytes(t) - w0
	s1 := b.db.Stats()
	d := s1.Sub(&s0)
	// Each write is one page (no record here spans two), the meta page included.
	pages := d.TxStats.GetWrite()
	bolted := pages * int64(b.db.Info().PageSize)
	t.Logf("%d commits: bbolt wrote %d pages (%d B), the process wrote back %d B", commits, pages, bolted, written)
	if written > bolted+bolted/10 {
		t.Errorf("%d commits wrote back %d B for bbolt's %d pages of %d B (%.1f pages a commit for bbolt's %.1f): the page cache writes back more than bbolt writes",
			commits, written, pages, b.db.Info().PageSize, float64(written)/float64(commits)/float64(b.db.Info().PageSize), float64(pages)/commits)
	}
}

// TestSmallCommitPages proves the format-3 layout's point: offline at 1 Hz
// a commit holds one 250 B record, and with a backlog of 20,000 records
// (a tree of three levels) it writes at most four pages on average (the
// issue's 16 KiB a fix): root, freelist and meta, and every few commits the
// path down the records tree when bucket recent moves on. With every record
// put into records (format 2) it wrote six.
func TestSmallCommitPages(t *testing.T) {
	b, _ := openTest(t, quietOptions())
	for i := range 20_000 {
		if _, err := b.Append(b.now(), fixEncoder); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if i%5000 == 4999 {
			commit(t, b)
		}
	}
	const commits = 60
	s0 := b.db.Stats()
	for range commits {
		if _, err := b.Append(b.now(), fixEncoder); err != nil {
			t.Fatalf("Append: %v", err)
		}
		commit(t, b)
	}
	s1 := b.db.Stats()
	d := s1.Sub(&s0)
	per := float64(d.TxStats.GetWrite()) / commits
	t.Logf("%d one-record commits wrote %d pages: %.2f a commit", commits, d.TxStats.GetWrite(), per)
	if per > 4 {
		t.Errorf("one-record commits write %.2f pages each, want at most 4 (16 KiB a fix at 1 Hz)", per)
	}
}

// TestGroupCommitPages: offline at 100 fixes/s of 250 B with 1 s commits,
// a commit of 100 records is one group (format 4): its bucket's page and
// overflow pages (seven), a leaf of groups, the root, the freelist and the
// meta page, 11 pages or 451 B a fix. In bucket records (format 3) it was
// 12.2: eight leaves (the last one rewritten each time), the branch above
// them, the root, the freelist and the meta page. A commit of 110 records
// would just spill into an eighth page: its last record stays in recent.
func TestGroupCommitPages(t *testing.T) {
	for _, tt := range []struct {
		per int
		max float64
	}{{100, 11.2}, {110, 11.5}} {
		t.Run(fmt.Sprint(tt.per), func(t *testing.T) {
			b, _ := openTest(t, quietOptions())
			const commits = 20
			s0 := b.db.Stats()
			for range commits {
				for range tt.per {
					if _, err := b.Append(b.now(), fixEncoder); err != nil {
						t.Fatalf("Append: %v", err)
					}
				}
				commit(t, b)
			}
			s1 := b.db.Stats()
			d := s1.Sub(&s0)
			// Every page a commit writes but the meta page is allocated.
			pages := float64(d.TxStats.GetPageCount())/commits + 1
			t.Logf("%d commits of %d records: %.2f pages a commit, %.0f B a fix", commits, tt.per, pages, pages*float64(b.db.Info().PageSize)/float64(tt.per))
			if pages > tt.max {
				t.Errorf("%d-record commits write %.2f pages each, want at most %g", tt.per, pages, tt.max)
			}
			if st := b.Stats(); st.Pending != commits*tt.per {
				t.Errorf("pending %d, want %d", st.Pending, commits*tt.per)
			}
			if got := allSeqs(t, b); !slices.Equal(got, seqRange(1, uint64(commits*tt.per))) {
				t.Errorf("pending %d seqs, want 1..%d in order", len(got), commits*tt.per)
			}
		})
	}
}

// TestGroupsLeavesFull: group keys ascend, so bucket groups fills its leaves
// to the brim, as records does: 300 groups take 4 leaves, not the 5 of
// bbolt's default half-full splits, so the path down groups stays at two
// levels (a branch and a leaf) for about 17,000 groups (4.8 h at 100
// fixes/s), not about 10,000.
func TestGroupsLeavesFull(t *testing.T) {
	b, _ := openTest(t, quietOptions())
	const groups = 300
	for range groups {
		for range 10 { // 2.6 KB: a group
			if _, err := b.Append(b.now(), fixEncoder); err != nil {
				t.Fatalf("Append: %v", err)
			}
		}
		commit(t, b)
	}
	var n, leaves int
	err := b.view(func(tx *bolt.Tx) error {
		gs := tx.Bucket(bucketGroups)
		n = gs.Stats().BucketN - 1
		leaves = gs.Stats().LeafPageN - n // each group's own page is a leaf too
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d groups in %d leaves", n, leaves)
	if n != groups || leaves > 4 {
		t.Errorf("%d groups in %d leaves of bucket groups, want %d in at most 4", n, leaves, groups)
	}
}

// TestFullBufferCommitPages: offline at 100 fixes/s with a full buffer,
// every commit evicts about a commit's worth of the oldest records, and
// commits are uneven (90 to 114 records). Two costs came with groups: the
// eviction cut a group in two, and the rest of it was rewritten at the next
// commit (bbolt wrote 16.7 pages a commit); and the freed pages of evicted
// groups, cached as large folios since their group was written in one run,
// were reused one page at a time, each writing back its whole folio (the
// process wrote 16.2 pages a commit for bbolt's 12.8). MaxBytes now evicts
// whole groups, and each commit drops the file's cached pages: at most 13.5
// pages a commit, and no more written back than bbolt writes (plus 3 %).
// Needs a disk, as TestCommitWritesOnlyItsPages.
func TestFullBufferCommitPages(t *testing.T) {
	opts := quietOptions()
	opts.MaxBytes = 8 << 20
	b, err := Open(benchDBPath(t), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	appendN := func(n int) {
		for range n {
			if _, err := b.Append(b.now(), fixEncoder); err != nil {
				t.Fatalf("Append: %v", err)
			}
		}
		commit(t, b)
	}
	for range 400 { // 100,000 B of records a commit: the buffer is full after ~80
		appendN(100)
	}
	const commits = 60
	s0 := b.db.Stats()
	w0 := procWriteBytes(t)
	for c := range commits {
		appendN(90 + c*37%25)
	}
	written := procWriteBytes(t) - w0
	s1 := b.db.Stats()
	d := s1.Sub(&s0)
	pages := d.TxStats.GetPageCount() + commits // every page but the meta page is allocated
	bolted := pages * int64(b.db.Info().PageSize)
	t.Logf("%d commits on a full buffer: bbolt wrote %.2f pages a commit, the process %.2f", commits,
		float64(pages)/commits, float64(written)/commits/float64(b.db.Info().PageSize))
	if st := b.Stats(); st.DroppedMaxBytes == 0 {
		t.Fatalf("nothing evicted: the buffer is not full")
	}
	if float64(pages)/commits > 13.5 {
		t.Errorf("bbolt wrote %.2f pages a commit, want at most 13.5", float64(pages)/commits)
	}
	if written > bolted+bolted*3/100 {
		t.Errorf("the process wrote back %d B for bbolt's %d pages: the page cache writes back more than bbolt writes", written, pages)
	}
}
