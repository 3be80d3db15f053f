package buffer

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// clockFloor is a time before any gateway ran this code. A record timed
// earlier was timed by a clock that was not set (a receiver before its first
// fix, a week-number rollover, or a format-1 record appended before the
// gateway's clock was set): its age is unknown, so MaxAge spares it;
// MaxBytes still bounds it.
var clockFloor = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// tooOld reports whether a record of time at is past MaxAge, given cutoff:
// the caller's latest time minus MaxAge. Both are the caller's times, never
// the gateway's clock, so a step of that clock ages nothing.
func tooOld(at, cutoff time.Time) bool {
	return at.Before(cutoff) && !at.Before(clockFloor)
}

// Commit writes the tail to disk now, in one fsynced transaction, together
// with pending deletions (acks, MaxBytes and MaxAge evictions) and, when
// half the current block is used, the next seq reservation. It writes
// nothing when there is nothing to do. On error the tail stays in memory.
// Then, as after Run's commits, it drops the pages of the file that reads
// and the transaction have mapped (releaseMapped): a caller that commits
// a backlog in groups (1,000 fixes at a time) held 15 MiB of them between
// two of Run's wakes.
func (b *Buffer) Commit() error {
	if b.readOnly {
		return ErrReadOnly
	}
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	err := b.commitLocked(false, dueAll)
	b.releaseMapped()
	return err
}

// dueAll is the dueBy of a commit that writes the whole tail (Commit, Close).
const dueAll = time.Duration(math.MaxInt64)

// commitLocked is Commit with commitMu held. clean also records a clean stop.
// The unacked tail is written only if one of its records was appended at or
// before dueBy (a monotonic instant, as entry.born), and then all of it. A commit is
// three steps over one plan: planCommit decides under mu what to write and
// delete, applyCommit runs the transaction without mu (readers and Append
// go on), and settleCommit folds the result back into the in-memory state.
func (b *Buffer) commitLocked(clean bool, dueBy time.Duration) error {
	p, err := b.planCommit(clean, dueBy)
	if err != nil {
		return err
	}
	b.noteDrops(p.droppedBytes, p.droppedAge)
	if p.idle() {
		return nil
	}
	if err := b.applyCommit(p); err != nil {
		b.mu.Lock()
		b.inflight = 0
		b.st.CommitErrors++
		b.st.LastCommitErr = err.Error()
		b.mu.Unlock()
		return fmt.Errorf("commit %d records: %w", len(p.snap), err)
	}
	if p.newHwm != 0 {
		if err := b.publishReserved(p.newHwm); err != nil {
			b.warnSidecar(err) // the records are committed; only the reservation waits
		}
	}
	hook := b.settleCommit(p)
	b.noteDrops(uint64(p.res.evictBytes), uint64(p.res.evictAge))
	if !p.checking {
		// A group's pages were written in one run, which the page cache
		// keeps as large folios: a later commit writing one page into one
		// (reusing a freed page) would write back the whole folio.
		b.dropCache()
	}
	if hook != nil {
		hook(p.last())
	}
	return nil
}

// commitPlan is one commit: what planCommit decided from the in-memory
// state, and what applyCommit's transaction found and did on disk.
type commitPlan struct {
	clean  bool
	cutoff time.Time // records timed before it are past MaxAge: the latest caller's time minus MaxAge

	snap      []entry // tail records to write, ascending seq
	snapBytes int64   // data bytes of snap
	tailBytes int64   // data bytes pending in the tail, written now or later

	// acked are the committed records acked before the plan, seq to data
	// length. They stay in ackedDisk until the transaction that deletes them
	// has committed: a reader in the meantime (an fsync can take long) must
	// not see them as pending, or the uplink sends them again.
	acked     map[uint64]int64
	diskBytes int64 // committed data bytes before this commit
	diskCount int   // committed records before this commit
	needEvict bool  // the disk holds records past MaxBytes or MaxAge
	checking  bool  // the background check runs: evict nothing (the front is not proven yet)

	next      uint64 // the seq the next Append gets: clean_next on a clean stop
	committed uint64 // seq_committed: the first seq neither written, acked nor dropped
	newHwm    uint64 // seq reservation to write; 0: none

	droppedAge, droppedBytes uint64 // tail records dropped by the plan

	journal bool     // a compaction is copying: note the record keys written or deleted in touched
	touched []string // record keys this commit wrote or deleted, when journal

	res commitResult
}

// commitResult is what applyCommit's transaction deleted and found.
type commitResult struct {
	deleted, evictAge, evictBytes, invalid int
	deletedBytes                           int64
	oldest                                 time.Time // appended time of the oldest record left on disk
}

// idle reports a plan with nothing to write.
func (p *commitPlan) idle() bool {
	return len(p.snap) == 0 && len(p.acked) == 0 && !p.needEvict && p.newHwm == 0 && !p.clean
}

// last is the highest seq the commit writes, 0 if none.
func (p *commitPlan) last() uint64 {
	if len(p.snap) == 0 {
		return 0
	}
	return p.snap[len(p.snap)-1].seq
}

// planCommit rebuilds the tail (drops acked entries, then too old ones, then
// the oldest over MaxBytes) and decides what the commit writes: the whole
// unacked tail once its oldest record is due (appended at or before dueBy),
// else none of it. Writing the records not yet due with the one that is
// groups a backlog into one commit per interval; online, a commit is due
// only when a record waited a whole interval for its ack, which a healthy
// uplink never lets happen. No transaction is in flight (commitMu), so the
// tail may be rebuilt.
func (b *Buffer) planCommit(clean bool, dueBy time.Duration) (*commitPlan, error) {
	p := &commitPlan{clean: clean}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	p.cutoff = b.latest.Add(-b.opts.MaxAge)
	live := b.tail[:0]
	for _, e := range b.tail {
		switch {
		case e.acked:
		case tooOld(e.at, p.cutoff):
			p.droppedAge++
			b.tailLive--
			b.tailBytes -= int64(len(e.data))
		default:
			live = append(live, e)
		}
	}
	clear(b.tail[len(live):])
	for len(live) > 0 && b.tailBytes > b.opts.MaxBytes {
		p.droppedBytes++
		b.tailLive--
		b.tailBytes -= int64(len(live[0].data))
		live[0] = entry{}
		live = live[1:]
	}
	b.tail = live
	k := 0
	if len(live) > 0 && live[0].born <= dueBy {
		k = len(live)
	}
	p.snap = append([]entry(nil), live[:k]...)
	for _, e := range p.snap {
		p.snapBytes += int64(len(e.data))
	}
	p.tailBytes = b.tailBytes
	b.inflight = p.last()
	p.journal = b.journal != nil
	p.acked = maps.Clone(b.ackedDisk)
	p.diskBytes, p.diskCount = b.diskBytes, b.diskCount
	p.needEvict = b.evictDue(p.cutoff) && !b.checking
	p.checking = b.checking
	p.next = b.next
	// Records not yet due stay in the tail and are lost by a crash: the gap Open logs must start at the first.
	p.committed = p.next
	if k < len(live) {
		p.committed = live[k].seq
	}
	if b.reserveDue() {
		p.newHwm = b.blockEnd(p.next)
	}
	b.st.DroppedMaxAge += p.droppedAge
	b.st.DroppedMaxBytes += p.droppedBytes
	return p, nil
}

// evictDue reports committed records past MaxAge (records timed before
// cutoff) or over MaxBytes together with the tail. Caller holds mu.
func (b *Buffer) evictDue(cutoff time.Time) bool {
	return b.diskCount > 0 && (b.diskBytes+b.tailBytes > b.opts.MaxBytes || tooOld(b.diskOldest, cutoff))
}

// reserveDue reports that half the current seq block is used, so the next
// commit reserves the next block. Caller holds mu.
func (b *Buffer) reserveDue() bool {
	return b.hwm < maxSeq && b.hwm-(b.next-1) < b.opts.SeqBlock/2+1
}

// applyCommit runs the plan's transaction: deletes the acked records, evicts
// from the front what is past MaxAge or MaxBytes (and anything
// undecodable), writes the snapshot and the seq marks. It fills p.res.
func (b *Buffer) applyCommit(p *commitPlan) error {
	// Deleting in key order visits each leaf once, in file order.
	ackedSeqs := slices.Sorted(maps.Keys(p.acked))
	return guard(func() error {
		return b.db.Update(func(tx *bolt.Tx) error {
			p.res, p.touched = commitResult{}, p.touched[:0]
			meta := tx.Bucket(bucketMeta)
			var gone [][]byte
			look := newRecordLookup(tx)
			for _, s := range ackedSeqs {
				if v := look.get(seqKey(s)); v != nil {
					p.res.deleted++
					p.res.deletedBytes += int64(max(len(v)-valueHeader, 0))
					p.touch(seqKey(s))
					gone = append(gone, seqKey(s))
				}
			}
			if err := deleteRecords(tx, gone, p.touch); err != nil {
				return err
			}
			if !p.checking {
				if err := b.evictFront(tx, p); err != nil {
					return err
				}
			}
			keys, vals := make([][]byte, len(p.snap)), make([][]byte, len(p.snap))
			for i, e := range p.snap {
				keys[i], vals[i] = seqKey(e.seq), encodeValue(e.at, e.data)
			}
			if err := stageOrMove(tx, keys, vals, p.touch); err != nil {
				return err
			}
			if p.res.oldest.IsZero() && len(p.snap) > 0 {
				p.res.oldest = p.snap[0].at
			}
			if err := meta.Put(keyCommitted, u64(p.committed)); err != nil {
				return err
			}
			if p.newHwm != 0 {
				if err := meta.Put(keyReserved, u64(p.newHwm)); err != nil {
					return err
				}
			}
			if p.clean {
				if err := meta.Put(keyClean, u64(p.next)); err != nil {
					return err
				}
			}
			if b.commitHook != nil {
				return b.commitHook(tx)
			}
			return nil
		})
	})
}

// evictFront deletes records from the front (the lowest keys of records,
// groups and recent together) while they are undecodable, past MaxAge, or
// over MaxBytes together with the tail, and notes the first one kept in
// p.res.oldest. MaxBytes evicts a group whole when the rest of it is at
// most 1/wholeGroupShare of MaxBytes: the rest of a group cut in two would
// be rewritten, most of its pages, at the next commit, and a full buffer
// offline evicts at every commit. With the default MaxBytes that is always
// (a group is at most groupMax); a tiny MaxBytes is kept exactly.
func (b *Buffer) evictFront(tx *bolt.Tx, p *commitPlan) error {
	onDisk := p.diskBytes - p.res.deletedBytes
	var gone [][]byte
	var byBytes []byte // the last key evicted for MaxBytes
	var cut map[[8]byte]bool
	inCut := func(k []byte) bool { // k is in the group of byBytes
		if byBytes == nil {
			return false
		}
		if cut == nil {
			cut = make(map[[8]byte]bool)
			if gs := tx.Bucket(bucketGroups); gs != nil {
				if _, recs, i := groupFind(gs, byBytes); i >= 0 {
					var rest int64
					for _, r := range recs[i+1:] {
						rest += int64(max(len(r.v)-valueHeader, 0))
					}
					for _, r := range recs[i:] {
						cut[r.key] = rest <= b.opts.MaxBytes/wholeGroupShare
					}
				}
			}
		}
		return len(k) == 8 && cut[[8]byte(k)]
	}
	c := newPairCursor(tx)
	for k, v := c.Seek(seqKey(0)); k != nil; k, v = c.Next() {
		at, data, derr := decodeValue(v)
		switch {
		case derr != nil:
			p.res.invalid++ // undecodable: nothing to keep
		case tooOld(at, p.cutoff):
			p.res.evictAge++
		case onDisk+p.tailBytes > b.opts.MaxBytes || inCut(k):
			p.res.evictBytes++
			byBytes = append(byBytes[:0], k...)
		default:
			p.res.oldest = at
			return deleteRecords(tx, gone, p.touch)
		}
		onDisk -= int64(len(data))
		p.res.deletedBytes += int64(len(data))
		p.touch(k)
		gone = append(gone, bytes.Clone(k))
	}
	return deleteRecords(tx, gone, p.touch)
}

// wholeGroupShare bounds what evicting whole groups drops beyond MaxBytes:
// at most MaxBytes/64, 2.4 MB of the default 144 MiB (a commit at 100
// fixes/s is about 26 KB).
const wholeGroupShare = 64

// settleCommit folds a committed plan into the in-memory state: the acked
// records it deleted leave ackedDisk, the records it wrote leave the tail
// (those acked during the transaction become deletions for the next
// commit), and the disk accounting and counters move. It returns the
// afterCommit hook to call.
func (b *Buffer) settleCommit(p *commitPlan) func(uint64) {
	last := p.last()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inflight = 0
	for s, n := range p.acked {
		delete(b.ackedDisk, s)
		b.ackedDiskBytes -= n
	}
	b.ackedDiskMax = 0
	for s := range b.ackedDisk {
		b.ackedDiskMax = max(b.ackedDiskMax, s)
	}
	i := 0
	for ; i < len(b.tail) && b.tail[i].seq <= last; i++ {
		if e := b.tail[i]; e.acked {
			j, _ := slices.BinarySearchFunc(p.snap, e.seq, func(x entry, s uint64) int { return cmpU64(x.seq, s) })
			if j < len(p.snap) && p.snap[j].seq == e.seq {
				b.markAckedDisk(e.seq, int64(len(p.snap[j].data)))
			}
		} else {
			b.tailLive--
			b.tailBytes -= int64(len(e.data))
		}
	}
	clear(b.tail[:i])
	b.tail = b.tail[i:]
	r := p.res
	b.diskCount = p.diskCount - r.deleted - r.evictAge - r.evictBytes - r.invalid + len(p.snap)
	b.diskBytes = p.diskBytes - r.deletedBytes + p.snapBytes
	b.diskOldest = r.oldest
	b.st.DroppedMaxAge += uint64(r.evictAge)
	b.st.DroppedMaxBytes += uint64(r.evictBytes)
	b.st.DroppedInvalid += uint64(r.invalid)
	b.st.Commits++
	b.st.LastCommitErr = ""
	if b.journal != nil {
		for _, k := range p.touched {
			b.journal[k] = struct{}{}
		}
	}
	return b.afterCommit
}

// touch notes a record key the commit writes or deletes, for a compaction's
// catch-up.
func (p *commitPlan) touch(k []byte) {
	if p.journal {
		p.touched = append(p.touched, string(k))
	}
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
	b.stopCheck() // before commitMu, which the check's end takes
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
		cerr = b.commitLocked(true, dueAll)
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
