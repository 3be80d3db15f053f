package buffer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// compactTxSize bounds each transaction of a compaction, so copying a large
// backlog does not hold it all in memory.
const compactTxSize = 4 << 20

// compactDue reports whether a compaction check is due: at most one per
// compactEvery.
func (b *Buffer) compactDue() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.checking || now.Sub(b.lastCompact) < b.compactEvery { // a copy would read every page before the check has
		return false
	}
	b.lastCompact = now
	return true
}

// maybeCompact compacts the file when it is worth it and possible: bbolt
// files never shrink, so after a backlog drains the file keeps its peak size.
// Errors are logged, not returned: a file that stays large is not a failure.
// Run calls it on its own goroutine, so commits go on while it copies.
func (b *Buffer) maybeCompact(ctx context.Context) {
	if _, err := b.compactIfWorthIt(ctx); err != nil && ctx.Err() == nil {
		b.log.Warn("compaction failed; will retry later", "err", err)
	}
}

// compactIfWorthIt compacts when the file is at least compactMin bytes and
// more than half of it is free pages, and the disk has room for the copy.
// It reports whether it compacted.
func (b *Buffer) compactIfWorthIt(ctx context.Context) (bool, error) {
	size, worth, err := b.worthCompacting()
	if err != nil || !worth {
		return false, err
	}
	if err := b.compact(ctx); err != nil {
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

// worthCompacting returns the file's size and whether compacting it is worth
// it and possible.
func (b *Buffer) worthCompacting() (int64, bool, error) {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return 0, false, ErrClosed
	}
	fi, err := os.Stat(b.path)
	if err != nil {
		return 0, false, fmt.Errorf("compact: %w", err)
	}
	size := fi.Size()
	st := b.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(b.db.Info().PageSize)
	if size < b.compactMin || free*2 < size {
		return size, false, nil
	}
	used := size - free
	var fs unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(b.path), &fs); err != nil {
		return size, false, fmt.Errorf("compact: statfs: %w", err)
	}
	avail := int64(fs.Bavail) * int64(fs.Bsize)
	if need := used + used/4 + 1<<20; avail < need {
		return size, false, fmt.Errorf("compact: %d bytes free on disk, need %d for the copy", avail, need)
	}
	return size, true, nil
}

// compact copies the live data into NAME.compact, then swaps it in with a
// rename. The copy holds no lock that commits take: it reads the file in one
// read transaction while commits go on, and each commit notes in
// b.journal the record keys it wrote or deleted. Only the catch-up (those
// keys and the meta bucket, a commit interval's worth) and the swap hold
// commitMu, so the loss window stays one commit interval while it runs.
// Readers wait only for the swap. A crash at any point leaves either the old
// file, complete, or the new one, caught up, at path; a stale NAME.compact
// is removed by the next compaction. Only one compaction runs at a time
// (Run's goroutine), and Close is called after Run has returned.
//
// Caveat: bbolt remaps its file only when no read transaction is open, so a
// commit that must grow the file past bbolt's memory map waits for the copy.
// A compaction starts only when at least half the file is free pages, and
// bbolt maps ahead of the file (doubling, up to 1 GiB steps), so commits
// during a copy fit in it unless a huge tail arrives at once.
func (b *Buffer) compact(ctx context.Context) error {
	tmp := b.path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("compact: %w", err)
	}
	dst, err := bolt.Open(tmp, 0o640, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	src, err := b.startJournal()
	if err == nil {
		err = guard(func() error { return copyDB(ctx, dst, src, b.compactHook) })
	}
	if err != nil {
		b.stopJournal()
		_ = dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("compact: copy: %w", err)
	}

	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	keys := b.stopJournal()
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		err = ErrClosed
	} else {
		err = guard(func() error { return catchUp(dst, src, keys) })
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compact: catch up: %w", err)
	}
	return b.swapIn(tmp)
}

// startJournal makes every commit from now on note the record keys it
// touches, and returns the database to copy. It takes commitMu, so no commit
// is in flight: what the copy's read transaction misses is in the journal.
func (b *Buffer) startJournal() (*bolt.DB, error) {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	b.journal = make(map[string]struct{})
	return b.db, nil
}

// stopJournal ends the journal and returns it.
func (b *Buffer) stopJournal() map[string]struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	j := b.journal
	b.journal = nil
	return j
}

// copyDB copies every bucket of src into the empty dst as of one read
// transaction of src, in write transactions of at most compactTxSize bytes,
// calling hook (a test's) after each. It stops when ctx ends. The format has
// flat buckets, and groups, whose buckets each hold one value; any other
// nested bucket is an error.
func copyDB(ctx context.Context, dst, src *bolt.DB, hook func()) error {
	return src.View(func(stx *bolt.Tx) error {
		return stx.ForEach(func(name []byte, sb *bolt.Bucket) error {
			if err := dst.Update(func(dtx *bolt.Tx) error {
				_, err := dtx.CreateBucket(name)
				return err
			}); err != nil {
				return err
			}
			nested := bytes.Equal(name, bucketGroups)
			c := sb.Cursor()
			for k, v := c.First(); k != nil; {
				if err := ctx.Err(); err != nil {
					return err
				}
				err := dst.Update(func(dtx *bolt.Tx) error {
					db := dtx.Bucket(name)
					db.FillPercent = 1 // keys arrive in order: full pages
					for size := 0; k != nil && size < compactTxSize; k, v = c.Next() {
						switch {
						case nested && v == nil:
							g := groupValue(sb, k)
							if err := copyGroup(db, k, g); err != nil {
								return err
							}
							size += len(k) + len(g)
							continue
						case v == nil || nested:
							return fmt.Errorf("unexpected element %q in bucket %q", k, name)
						}
						if err := db.Put(k, v); err != nil {
							return err
						}
						size += len(k) + len(v)
					}
					return nil
				})
				if err != nil {
					return err
				}
				if hook != nil {
					hook()
				}
			}
			return nil
		})
	})
}

// copyGroup replaces group gk in the groups bucket dgs with value g (a
// packed group, or nil: none).
func copyGroup(dgs *bolt.Bucket, gk, g []byte) error {
	if dgs.Bucket(gk) != nil {
		if err := dgs.DeleteBucket(gk); err != nil {
			return err
		}
	}
	if g == nil {
		return nil
	}
	nb, err := dgs.CreateBucket(gk)
	if err != nil {
		return err
	}
	return nb.Put(groupValueKey, g)
}

// catchUp applies to dst what commits changed in src during the copy: each
// journaled record key gets src's current value or is deleted, each
// journaled group src's current value or is deleted, and the meta bucket is
// copied whole. Caller holds commitMu.
func catchUp(dst, src *bolt.DB, keys map[string]struct{}) error {
	return src.View(func(stx *bolt.Tx) error {
		return dst.Update(func(dtx *bolt.Tx) error {
			var recs, groups [][]byte
			for k := range keys {
				if len(k) == 9 && k[0] == 'g' {
					groups = append(groups, []byte(k[1:]))
				} else {
					recs = append(recs, []byte(k))
				}
			}
			slices.SortFunc(recs, bytes.Compare)
			// A key may have moved from recent to records or a group
			// meanwhile: delete it everywhere, then put it where src has
			// it. A group src holds it in is copied whole, after the
			// deletions, as are the journaled groups.
			if err := deleteRecords(dtx, recs, func([]byte) {}); err != nil {
				return err
			}
			sgs, dgs := stx.Bucket(bucketGroups), dtx.Bucket(bucketGroups)
			for _, k := range recs {
				for _, name := range [][]byte{bucketRecords, bucketRecent} {
					if v := stx.Bucket(name).Get(k); v != nil {
						if err := dtx.Bucket(name).Put(k, v); err != nil {
							return err
						}
					}
				}
				if sgs == nil || dgs == nil {
					continue
				}
				if gk, _, i := groupFind(sgs, k); i >= 0 {
					groups = append(groups, bytes.Clone(gk))
				}
			}
			for _, gk := range groups {
				if sgs == nil || dgs == nil {
					break
				}
				if err := copyGroup(dgs, gk, groupValue(sgs, gk)); err != nil {
					return err
				}
			}
			if err := dtx.DeleteBucket(bucketMeta); err != nil {
				return err
			}
			dm, err := dtx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			return stx.Bucket(bucketMeta).ForEach(func(k, v []byte) error { return dm.Put(k, v) })
		})
	})
}

// swapIn renames the caught-up copy tmp over the file and reopens it.
// Caller holds commitMu.
func (b *Buffer) swapIn(tmp string) error {
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
	b.dbMu.Unlock()
	b.dropCache() // the copy was written in large runs: see dropCache
	b.dbMu.Lock()
	if renameErr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compact: %w", renameErr)
	}
	return nil
}
