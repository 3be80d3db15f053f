package buffer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The background check. Open proves every page of a file before bbolt
// walks it (preflight.go, then bbolt's own check), reading the whole file:
// 200 MiB take 10 s at gateway flash's 20 MB/s, and a truck without a
// supercap starts unclean at every ignition. For a file of at least
// Options.bgCheckFrom, Open proves only what a commit reads (the meta and
// freelist pages, and each bucket's rightmost path, where new keys go) and
// starts this check, which proves the rest while fixes flow:
//
//   - It holds one read transaction, begun in Open before any commit, so
//     bbolt reuses none of the pages it proves, and proves the tree of that
//     transaction's meta page (its own reads, as preflight), then walks and
//     sums its records through bbolt.
//   - Until it ends, reads return the tail and the records this process
//     committed (seqs from sessionFirst, in pages it wrote); nothing older
//     is read, acked, evicted or compacted.
//   - Found sound: the backlog's counts join the buffer's and it is
//     delivered like any other.
//   - Found damaged: the records this process committed are taken back
//     into the tail, the file is moved aside as Open would have, a new one
//     is started with the same seq marks, and the next commit writes them
//     there: nothing of this session is lost, the old backlog is kept in the
//     moved file, and the next start opens the new file (no crash loop).

// errCheckStopped ends a check that Close interrupted.
var errCheckStopped = errors.New("background check stopped")

// startCheck begins the check's read transaction and starts its goroutine.
// Called by Open, before anything else uses the Buffer.
func (b *Buffer) startCheck() error {
	var tx *bolt.Tx
	err := guard(func() error {
		var err error
		tx, err = b.db.Begin(false)
		return err
	})
	if err != nil {
		return fmt.Errorf("background check: %w", err)
	}
	// Nothing has written since the transaction began (Open runs alone),
	// so the file's newest meta page is the transaction's.
	f, m, err := openMeta(b.path)
	if err == nil && m.txid != uint64(tx.ID()) {
		f.Close()
		err = fmt.Errorf("meta page txid %d, transaction %d", m.txid, tx.ID())
	}
	if err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("background check: %w", err)
	}
	b.checkDone, b.checkStop = make(chan struct{}), make(chan struct{})
	go b.runCheck(tx, f, m)
	return nil
}

// runCheck proves and sums the snapshot, then settles the outcome.
func (b *Buffer) runCheck(tx *bolt.Tx, f *os.File, m boltMeta) {
	defer close(b.checkDone)
	start := time.Now()
	page := func() error {
		select {
		case <-b.checkStop:
			return errCheckStopped
		default:
		}
		if b.opts.checkPage != nil {
			return b.opts.checkPage()
		}
		return nil
	}
	err := warm(f, int64(m.hwm)*int64(m.pageSize), b.checkStop)
	if err == nil {
		err = preflightTree(f, m, &treeCheck{Page: page})
	}
	f.Close()
	if err == nil {
		err = page() // Close may have come meanwhile: the walk below does not look
	}
	// The walk maps every page of the file: drop them as it goes, or the
	// process would hold the whole file resident until the check ends.
	r := scanResult{tick: func() {
		if b.opts.checkTick != nil {
			b.opts.checkTick()
		}
		b.releaseMappedIfFree()
	}}
	if err == nil {
		err = guard(func() error {
			// Not bbolt's tx.Check: it compares the tree with the current
			// freelist, which holds the pages commits freed since the
			// snapshot ("reachable freed"). preflightTree proved the
			// snapshot's freelist in range and its tree a tree.
			if err := scanTx(tx, int64(m.hwm)*int64(m.pageSize), &r); err != nil {
				return corruptRead(err)
			}
			return nil
		})
	}
	_ = tx.Rollback()
	switch {
	case errors.Is(err, errCheckStopped):
		return
	case err == nil:
		b.checkPassed(r, time.Since(start))
	default:
		b.checkFailed(err)
	}
}

// warmChunk is the size of the check's sequential reads.
const warmChunk = 1 << 20

// warm reads the file's first size bytes in order, so that the tree walk
// after it, which reads page by page in tree order, finds them in the page
// cache: through a slow device (or the throttled test filesystem) the walk's
// small scattered reads took 57 s for a 172 MiB file that reads in 9 s.
// Read errors are left to the walk, which classifies them.
func warm(f *os.File, size int64, stop <-chan struct{}) error {
	buf := make([]byte, warmChunk)
	for off := int64(0); off < size; off += warmChunk {
		select {
		case <-stop:
			return errCheckStopped
		default:
		}
		if _, err := f.ReadAt(buf[:min(warmChunk, size-off)], off); err != nil {
			return nil
		}
	}
	return nil
}

// stopCheck stops the check and waits until it has released its
// transaction (bbolt's Close waits for every transaction). For Close.
func (b *Buffer) stopCheck() {
	if b.checkDone == nil {
		return
	}
	select {
	case <-b.checkStop:
	default:
		close(b.checkStop)
	}
	<-b.checkDone
}

// checkPassed adds the proven backlog to the buffer's counts and deletes its
// undecodable records.
func (b *Buffer) checkPassed(r scanResult, took time.Duration) {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	if len(r.invalid) > 0 {
		err := b.update(func(tx *bolt.Tx) error {
			for _, k := range r.invalid {
				if err := deleteRecord(tx, k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.log.Warn("undecodable records not deleted; the next check tries again", "count", len(r.invalid), "err", err)
		} else {
			b.log.Warn("deleted undecodable records", "count", len(r.invalid))
		}
	}
	b.mu.Lock()
	b.diskCount += r.count
	b.diskBytes += r.bytes
	if r.count > 0 {
		b.diskOldest = r.oldest
	}
	b.st.DroppedInvalid += uint64(len(r.invalid))
	b.checking = false
	b.kickLoop() // evictions may be due now that the backlog counts
	b.mu.Unlock()
	b.dropCache() // the check read every page: see dropCache
	b.log.Info("background check of the buffer done", "records", r.count, "bytes", r.bytes, "took", took.Round(time.Millisecond))
}

// update runs fn in a write transaction, guarded. Caller holds commitMu.
func (b *Buffer) update(fn func(tx *bolt.Tx) error) error {
	b.dbMu.RLock()
	defer b.dbMu.RUnlock()
	if b.db == nil {
		return ErrClosed
	}
	return guard(func() error { return b.db.Update(fn) })
}

// checkFailed handles damage the check found: see the package comment
// above. Holding commitMu, no commit is in flight and every committed
// record this process wrote is on disk, above sessionFirst.
func (b *Buffer) checkFailed(cause error) {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.dbMu.Lock()
	defer b.dbMu.Unlock()
	b.mu.Lock()
	closed, first := b.closed, b.sessionFirst
	b.mu.Unlock()
	if closed || b.db == nil {
		return
	}
	saved, serr := b.salvage(first)
	if serr != nil {
		b.log.Error("damaged database: the records this run committed could not be read back", "err", serr)
	}
	_ = b.db.Close()
	b.db = nil
	dst := b.path + ".corrupt-" + b.now().UTC().Format("20060102T150405.000000000Z")
	err := os.Rename(b.path, dst)
	if err == nil {
		err = syncDir(filepath.Dir(b.path))
	}
	if err == nil {
		b.db, err = b.freshDB()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.st.Quarantined++
	b.checking = false
	if err != nil {
		b.closed = true // every call now returns ErrClosed: the supervisor restarts the agent on a new file
		b.log.Error("damaged database found by the background check; no new one could be started", "cause", cause, "err", err)
		return
	}
	b.log.Error("damaged database moved aside (found by the background check); this run's records go on in a new one",
		"moved_to", dst, "cause", cause, "kept", len(saved))
	b.requeue(saved)
}

// salvage reads back the unacked records this process committed (seqs from
// first): in pages it wrote itself, below the spine Open proved.
func (b *Buffer) salvage(first uint64) ([]entry, error) {
	b.mu.Lock()
	acked := make(map[uint64]bool, len(b.ackedDisk))
	for s := range b.ackedDisk {
		acked[s] = true
	}
	b.mu.Unlock()
	var out []entry
	err := guard(func() error {
		return b.db.View(func(tx *bolt.Tx) error {
			c := newPairCursor(tx)
			for k, v := c.Seek(seqKey(first)); k != nil; k, v = c.Next() {
				s, ok := keySeq(k)
				at, data, derr := decodeValue(v)
				if !ok || derr != nil || acked[s] {
					continue
				}
				out = append(out, entry{seq: s, data: slices.Clone(data), at: at})
			}
			return nil
		})
	})
	return out, err
}

// freshDB creates a new database at b.path holding the current seq marks.
// Caller holds dbMu and commitMu.
func (b *Buffer) freshDB() (*bolt.DB, error) {
	db, err := bolt.Open(b.path, 0o640, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return nil, err
	}
	if err := syncDir(filepath.Dir(b.path)); err != nil {
		_ = db.Close()
		return nil, err
	}
	b.mu.Lock()
	hwm, next := b.hwm, b.next
	b.mu.Unlock()
	err = guard(func() error {
		return db.Update(func(tx *bolt.Tx) error {
			m, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			if _, err := tx.CreateBucket(bucketRecords); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(bucketRecent); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(bucketGroups); err != nil {
				return err
			}
			for k, v := range map[string]uint64{string(keyFormat): formatVersion, string(keyReserved): hwm, string(keyCommitted): next} {
				if err := m.Put([]byte(k), u64(v)); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// requeue puts salvaged records back at the front of the tail, due at once,
// and forgets the moved file's counts. Caller holds mu and commitMu.
func (b *Buffer) requeue(saved []entry) {
	due := time.Since(b.epoch) - b.opts.CommitInterval
	for i := range saved {
		saved[i].born = due
		b.tailBytes += int64(len(saved[i].data))
	}
	b.tailLive += len(saved)
	b.tail = append(saved, b.tail...)
	clear(b.ackedDisk)
	b.ackedDiskBytes, b.ackedDiskMax = 0, 0
	b.diskCount, b.diskBytes, b.diskOldest = 0, 0, time.Time{}
	if len(saved) > 0 {
		b.kickLoop()
	}
}
