package buffer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// compactTxSize bounds each transaction of a compaction, so copying a large
// backlog does not hold it all in memory.
const compactTxSize = 4 << 20

// maybeCompact compacts the file when it is worth it and possible: bbolt
// files never shrink, so after a backlog drains the file keeps its peak size.
// It runs at most once per compactEvery and errors are logged, not returned:
// a file that stays large is not a failure.
func (b *Buffer) maybeCompact() {
	b.mu.Lock()
	now := b.now()
	due := now.Sub(b.lastCompact) >= b.compactEvery
	if due {
		b.lastCompact = now
	}
	b.mu.Unlock()
	if !due {
		return
	}
	if _, err := b.compactIfWorthIt(); err != nil {
		b.log.Warn("compaction failed; will retry later", "err", err)
	}
}

// compactIfWorthIt compacts when the file is at least compactMin bytes and
// more than half of it is free pages, and the disk has room for the copy.
// It reports whether it compacted.
func (b *Buffer) compactIfWorthIt() (bool, error) {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return false, ErrClosed
	}
	fi, err := os.Stat(b.path)
	if err != nil {
		return false, fmt.Errorf("compact: %w", err)
	}
	size := fi.Size()
	st := b.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(b.db.Info().PageSize)
	if size < b.compactMin || free*2 < size {
		return false, nil
	}
	used := size - free
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(b.path), &fs); err != nil {
		return false, fmt.Errorf("compact: statfs: %w", err)
	}
	avail := int64(fs.Bavail) * int64(fs.Bsize)
	if need := used + used/4 + 1<<20; avail < need {
		return false, fmt.Errorf("compact: %d bytes free on disk, need %d for the copy", avail, need)
	}
	if err := b.compact(); err != nil {
		return false, err
	}
	after, _ := os.Stat(b.path)
	b.mu.Lock()
	b.st.Compactions++
	b.mu.Unlock()
	if after != nil {
		b.log.Info("compacted database", "size_before", size, "size_after", after.Size())
	}
	return true, nil
}

// compact copies the live data into NAME.compact, then swaps it in with a
// rename. Readers wait only for the swap. A crash at any point leaves either
// the old file or the new one at path; a stale NAME.compact is removed.
// Caller holds commitMu.
func (b *Buffer) compact() error {
	tmp := b.path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("compact: %w", err)
	}
	dst, err := bolt.Open(tmp, 0o640, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	err = guard(func() error { return bolt.Compact(dst, b.db, compactTxSize) })
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compact: copy: %w", err)
	}

	b.dbMu.Lock()
	defer b.dbMu.Unlock()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("compact: close old: %w", err)
	}
	renameErr := os.Rename(tmp, b.path)
	if renameErr == nil {
		renameErr = syncDir(filepath.Dir(b.path))
	}
	// Reopen whatever is at path now: the new file, or the old one if the
	// rename failed.
	db, err := bolt.Open(b.path, 0o640, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		b.db = nil
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		return fmt.Errorf("compact: reopen: %w", errors.Join(renameErr, err))
	}
	b.db = db
	if renameErr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compact: %w", renameErr)
	}
	return nil
}
