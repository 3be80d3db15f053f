package buffer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRealDiskFull fills a small tmpfs (needs root to mount; skipped
// otherwise): commits fail with ENOSPC, the tail is kept and counted, the
// buffer never panics, and once space is freed the next commit writes it all.
func TestRealDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 700<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "buffer.db")
	opts := testOptions(t)
	opts.SeqBlock = 100000 // one reservation: this test is about records
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		mustClose(t, b)
		checkDB(t, path)
	}()
	pad := strings.Repeat("f", 1000)
	var appended []uint64
	var commitErr error
	for i := 0; i < 2000 && commitErr == nil; i++ {
		appended = append(appended, mustAppend(t, b, pad))
		if i%20 == 19 {
			commitErr = b.Commit()
		}
	}
	if !errors.Is(commitErr, syscall.ENOSPC) {
		t.Fatalf("commit never failed with ENOSPC: %v", commitErr)
	}
	st := b.Stats()
	if st.CommitErrors != 1 || st.Tail == 0 || st.Pending != len(appended) {
		t.Errorf("after ENOSPC Stats = %+v, want the tail kept (%d appended)", st, len(appended))
	}
	// Still failing: retried, counted, nothing lost.
	if err := b.Commit(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("second commit = %v", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	if got := allSeqs(t, b); !equalU64(got, appended) {
		t.Errorf("after space freed: %d pending, want %d", len(got), len(appended))
	}
	if st := b.Stats(); st.Tail != 0 || st.LastCommitErr != "" {
		t.Errorf("after recovery Stats = %+v", st)
	}
}
