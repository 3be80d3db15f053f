package buffer

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// blockEnd is the mark that reserves a block of seqs starting at next. The
// range ends at maxSeq, so it never wraps.
func (b *Buffer) blockEnd(next uint64) uint64 { return min(next-1+b.opts.SeqBlock, maxSeq) }

// reserve makes hwm durable in the database, then in the sidecar, and only
// then lets Append use seqs up to it. Caller holds commitMu (or is Open).
func (b *Buffer) reserve(hwm uint64) error {
	if err := b.writeReserved(hwm); err != nil {
		return err
	}
	return b.publishReserved(hwm)
}

// writeReserved writes hwm to the database's meta bucket.
func (b *Buffer) writeReserved(hwm uint64) error {
	err := guard(func() error {
		return b.db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keyReserved, u64(hwm))
		})
	})
	if err != nil {
		return fmt.Errorf("reserve seq up to %d: %w", hwm, err)
	}
	return nil
}

// publishReserved writes the sidecar, then lets Append use seqs up to hwm,
// which the database already holds durably. If the sidecar cannot be
// written the mark Append uses stays where it was: seqs past the sidecar's
// mark would repeat if the database were lost later. The next reservation
// (the next commit, or Append when the block runs out) tries again.
func (b *Buffer) publishReserved(hwm uint64) error {
	if err := writeSidecar(b.sidecar, hwm); err != nil {
		return fmt.Errorf("reserve seq up to %d: %w", hwm, err)
	}
	b.mu.Lock()
	if hwm > b.hwm {
		b.hwm = hwm
	}
	b.mu.Unlock()
	return nil
}

// warnSidecar logs a failed sidecar write at most once a minute: the commit
// loop retries it every commit interval.
func (b *Buffer) warnSidecar(err error) {
	if b.logDue(&b.lastSideLog) {
		b.log.Warn("seq sidecar not written; appends use only seqs it already covers", "err", err)
	}
}

// logDue reports whether a warning last logged at *last may be logged again
// (once per logEvery) and if so, marks it logged now. Caller holds no lock.
func (b *Buffer) logDue(last *time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if now.Sub(*last) < logEvery {
		return false
	}
	*last = now
	return true
}

// reserveNow reserves a block synchronously, for Append when the block
// reserved ahead ran out.
func (b *Buffer) reserveNow() error {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.mu.Lock()
	closed, next, hwm := b.closed, b.next, b.hwm
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if next <= hwm {
		return nil
	}
	if next > maxSeq {
		return fmt.Errorf("append: %w: the seq range ends at %d", ErrSeqUnavailable, uint64(maxSeq))
	}
	b.syncReserves++
	if b.logDue(&b.lastReserveLog) { // while reserving fails, every Append comes here
		b.log.Warn("seq block exhausted before the commit loop reserved the next; reserving synchronously", "next_seq", next)
	}
	if err := b.reserve(b.blockEnd(next)); err != nil {
		return fmt.Errorf("append: %w: %w", ErrSeqUnavailable, err)
	}
	return nil
}

// nextSeq decides where sequence numbers continue from, given the sidecar's reservation (side), the database's
// (dbHwm), the seq after the last committed record (committed), and the clean-stop mark (clean, if hasClean).
// gapFrom > 0 means an unclean stop: gapFrom..dbHwm may have been handed out and are skipped.
func nextSeq(side, dbHwm, committed, clean uint64, hasClean bool) (next, gapFrom uint64) {
	switch {
	case side > dbHwm:
		// The database is not the one the sidecar belongs to (deleted, quarantined, or restored from an old
		// copy): continue past everything the sidecar reserved.
		return side + 1, 0
	case hasClean:
		return max(clean, 1), 0
	case dbHwm > 0:
		if from := max(committed, 1); from <= dbHwm {
			return dbHwm + 1, from
		}
		return dbHwm + 1, 0
	}
	return 1, 0
}

// checkMarks rejects seq marks beyond the seq range: no run writes them, so
// the meta bucket is damaged, and continuing from one would wrap.
func checkMarks(m *bolt.Bucket) error {
	for _, k := range [][]byte{keyReserved, keyCommitted, keyClean} {
		limit := uint64(maxSeq)
		if !bytes.Equal(k, keyReserved) {
			limit++ // a next seq: one past the last one handed out
		}
		if v, ok := getU64(m.Get(k)); ok && v > limit {
			return fmt.Errorf("%w: meta %s %d is beyond the seq range", errCorrupt, k, v)
		}
	}
	return nil
}
