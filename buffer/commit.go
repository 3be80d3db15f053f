package buffer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// logEvery rate-limits repeated warnings (drops, commit errors): flash
// gateways keep their logs on the same flash.
const logEvery = time.Minute

// Run commits the tail every Options.CommitInterval until ctx ends, then
// commits once more and returns nil, or the final commit's error. A failed
// periodic commit (e.g. disk full) keeps the tail in memory, is counted in
// Stats, logged at most once a minute, and retried at the next tick. Only one
// Run may be active at a time. Call Close after Run has returned.
func (b *Buffer) Run(ctx context.Context) error {
	if b.readOnly {
		return ErrReadOnly
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	if b.running {
		b.mu.Unlock()
		return ErrRunning
	}
	b.running = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.running = false
		b.mu.Unlock()
	}()

	t := time.NewTicker(b.opts.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := b.Commit(); err != nil {
				return fmt.Errorf("buffer run: final commit: %w", err)
			}
			return nil
		case <-t.C:
			if err := b.Commit(); err != nil {
				if errors.Is(err, ErrClosed) {
					return fmt.Errorf("buffer run: %w", err)
				}
				b.logCommitError(err)
				continue
			}
			b.maybeCompact()
		}
	}
}

func (b *Buffer) logCommitError(err error) {
	b.mu.Lock()
	now := b.now()
	b.errsUnlogged++
	n := b.errsUnlogged
	due := now.Sub(b.lastErrLog) >= logEvery
	if due {
		b.lastErrLog = now
		b.errsUnlogged = 0
	}
	tail := b.tailLive
	b.mu.Unlock()
	if due {
		b.log.Warn("commit failed; keeping tail in memory and retrying", "err", err, "failures", n, "tail", tail)
	}
}

// clockFloor is a time before any gateway ran this code. A record appended
// earlier was appended before the clock was set (gateways without a
// real-time clock boot in 1970): its age is unknown, so MaxAge spares it;
// MaxBytes still bounds it.
var clockFloor = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// tooOld reports whether a record appended at at is past MaxAge. In-process
// times carry a monotonic reading, so clock steps do not age the tail.
func tooOld(at, cutoff time.Time) bool {
	return at.Before(cutoff) && !at.Before(clockFloor)
}

// Commit writes the tail to disk now, in one fsynced transaction, together
// with pending deletions (acks, MaxBytes and MaxAge evictions) and, when
// half the current block is used, the next seq reservation. It writes
// nothing when there is nothing to do. On error the tail stays in memory.
func (b *Buffer) Commit() error {
	if b.readOnly {
		return ErrReadOnly
	}
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	return b.commitLocked(false)
}

// commitLocked is Commit with commitMu held. clean also records a clean stop.
func (b *Buffer) commitLocked(clean bool) error {
	now := b.now()
	cutoff := now.Add(-b.opts.MaxAge)

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	// No transaction is in flight (commitMu), so the tail can be rebuilt:
	// drop acked entries, then too old ones, then the oldest over MaxBytes.
	live := b.tail[:0]
	var droppedAge, droppedBytes uint64
	for _, e := range b.tail {
		switch {
		case e.acked:
		case tooOld(e.at, cutoff):
			droppedAge++
			b.tailLive--
			b.tailBytes -= int64(len(e.data))
		default:
			live = append(live, e)
		}
	}
	clear(b.tail[len(live):])
	for len(live) > 0 && b.tailBytes > b.opts.MaxBytes {
		droppedBytes++
		b.tailLive--
		b.tailBytes -= int64(len(live[0].data))
		live[0] = entry{}
		live = live[1:]
	}
	b.tail = live
	snap := append([]entry(nil), live...)
	snapBytes := b.tailBytes
	acked := b.ackedDisk
	b.ackedDisk = make(map[uint64]int64)
	b.ackedDiskBytes = 0
	diskBytes, diskCount := b.diskBytes, b.diskCount
	needEvict := diskCount > 0 && (diskBytes+snapBytes > b.opts.MaxBytes || tooOld(b.diskOldest, cutoff))
	next := b.next
	var newHwm uint64
	if b.hwm-(next-1) < b.opts.SeqBlock/2+1 {
		newHwm = next - 1 + b.opts.SeqBlock
	}
	b.st.DroppedMaxAge += droppedAge
	b.st.DroppedMaxBytes += droppedBytes
	b.mu.Unlock()
	b.noteDrops(droppedBytes, droppedAge)

	if len(snap) == 0 && len(acked) == 0 && !needEvict && newHwm == 0 && !clean {
		return nil
	}

	var res struct {
		deleted, evictAge, evictBytes, invalid int
		deletedBytes                           int64
		oldest                                 time.Time
	}
	err := guard(func() error {
		return b.db.Update(func(tx *bolt.Tx) error {
			res.deleted, res.evictAge, res.evictBytes, res.invalid, res.deletedBytes = 0, 0, 0, 0, 0
			bk, meta := tx.Bucket(bucketRecords), tx.Bucket(bucketMeta)
			for s := range acked {
				if v := bk.Get(seqKey(s)); v != nil {
					res.deleted++
					res.deletedBytes += int64(max(len(v)-valueHeader, 0))
					if err := bk.Delete(seqKey(s)); err != nil {
						return err
					}
				}
			}
			onDisk := diskBytes - res.deletedBytes
			// Evict from the front: deleting while iterating a bbolt cursor
			// can skip keys, so re-seek to First after each delete.
			c := bk.Cursor()
			for k, v := c.First(); k != nil; k, v = c.First() {
				at, data, derr := decodeValue(v)
				switch {
				case derr != nil:
					res.invalid++ // undecodable: nothing to keep
				case tooOld(at, cutoff):
					res.evictAge++
				case onDisk+snapBytes > b.opts.MaxBytes:
					res.evictBytes++
				default:
					res.oldest = at
				}
				if !res.oldest.IsZero() {
					break
				}
				onDisk -= int64(len(data))
				res.deletedBytes += int64(len(data))
				if err := c.Delete(); err != nil {
					return err
				}
			}
			// Keys arrive in ascending order: full pages waste less flash.
			bk.FillPercent = 0.9
			for _, e := range snap {
				if err := bk.Put(seqKey(e.seq), encodeValue(e.at, e.data)); err != nil {
					return fmt.Errorf("put seq %d: %w", e.seq, err)
				}
			}
			if res.oldest.IsZero() && len(snap) > 0 {
				res.oldest = snap[0].at
			}
			if err := meta.Put(keyCommitted, u64(next)); err != nil {
				return err
			}
			if newHwm != 0 {
				if err := meta.Put(keyReserved, u64(newHwm)); err != nil {
					return err
				}
			}
			if clean {
				if err := meta.Put(keyClean, u64(next)); err != nil {
					return err
				}
			}
			if b.commitHook != nil {
				return b.commitHook(tx)
			}
			return nil
		})
	})
	if err != nil {
		b.mu.Lock()
		for s, n := range acked {
			if _, ok := b.ackedDisk[s]; !ok {
				b.ackedDisk[s] = n
				b.ackedDiskBytes += n
			}
		}
		b.st.CommitErrors++
		b.st.LastCommitErr = err.Error()
		b.mu.Unlock()
		return fmt.Errorf("commit %d records: %w", len(snap), err)
	}

	if newHwm != 0 {
		b.publishReserved(newHwm)
	}
	var last uint64
	if len(snap) > 0 {
		last = snap[len(snap)-1].seq
	}
	b.mu.Lock()
	// Everything up to last is on disk now. Entries acked during the
	// transaction become deletions for the next commit.
	i := 0
	for ; i < len(b.tail) && b.tail[i].seq <= last; i++ {
		if e := b.tail[i]; e.acked {
			j, _ := slices.BinarySearchFunc(snap, e.seq, func(x entry, s uint64) int { return cmpU64(x.seq, s) })
			if j < len(snap) && snap[j].seq == e.seq {
				n := int64(len(snap[j].data))
				b.ackedDisk[e.seq] = n
				b.ackedDiskBytes += n
			}
		} else {
			b.tailLive--
			b.tailBytes -= int64(len(e.data))
		}
	}
	clear(b.tail[:i])
	b.tail = b.tail[i:]
	b.diskCount = diskCount - res.deleted - res.evictAge - res.evictBytes - res.invalid + len(snap)
	b.diskBytes = diskBytes - res.deletedBytes + snapBytes
	b.diskOldest = res.oldest
	b.st.DroppedMaxAge += uint64(res.evictAge)
	b.st.DroppedMaxBytes += uint64(res.evictBytes)
	b.st.DroppedInvalid += uint64(res.invalid)
	b.st.Commits++
	b.st.LastCommitErr = ""
	hook := b.afterCommit
	b.mu.Unlock()
	b.noteDrops(uint64(res.evictBytes), uint64(res.evictAge))
	if hook != nil {
		hook(last)
	}
	return nil
}

// noteDrops logs dropped records at most once a minute, with the counts
// since the previous log.
func (b *Buffer) noteDrops(bytes, age uint64) {
	if bytes == 0 && age == 0 {
		return
	}
	b.mu.Lock()
	b.dropsUnlogged[0] += bytes
	b.dropsUnlogged[1] += age
	now := b.now()
	if now.Sub(b.lastDropLog) < logEvery {
		b.mu.Unlock()
		return
	}
	d := b.dropsUnlogged
	b.dropsUnlogged = [2]uint64{}
	b.lastDropLog = now
	b.mu.Unlock()
	b.log.Warn("buffer full: dropped oldest records",
		"max_bytes", d[0], "max_age", d[1], "limit_bytes", b.opts.MaxBytes, "limit_age", b.opts.MaxAge)
}

// Close commits the tail, records a clean stop (so the next Open continues
// the sequence without a gap) and closes the database. It returns the commit
// error, if any; the database is closed either way. Call it after Run has
// returned. Closing twice returns nil.
func (b *Buffer) Close() error {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	var cerr error
	if !b.readOnly {
		cerr = b.commitLocked(true)
	}
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.dbMu.Lock()
	var err error
	if b.db != nil { // nil if a compaction could not reopen the file
		err = b.db.Close()
		b.db = nil
	}
	b.dbMu.Unlock()
	if err := errors.Join(cerr, err); err != nil {
		return fmt.Errorf("close buffer: %w", err)
	}
	return nil
}
