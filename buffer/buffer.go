package buffer

import (
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Record is one pending record. Data is the caller's copy: it stays valid
// after the call that returned it and may be modified.
type Record struct {
	Seq  uint64
	Data []byte
	// Appended is the time the caller gave Append (the agent: the fix's GNSS
	// time), not the gateway's clock at the call.
	Appended time.Time
	// Queued is when Append was called, on this boot's monotonic clock
	// (time.Since(Queued) is immune to steps of the wall clock). It is kept
	// in memory only, for the last queuedRing appends of this Buffer; it is
	// zero for records appended before Open (read from disk after a
	// restart) or longer ago. It tells a record just recorded from backlog.
	Queued time.Time
}

// queuedRing is how many of the latest appends remember their Queued
// instant once committed: ~17 minutes at 1 Hz, far more than the seconds
// for which a record counts as just recorded. 16 KB.
const queuedRing = 1024

// queuedAt is the append instant of one seq, in the ring Buffer.queued.
type queuedAt struct {
	seq  uint64
	born time.Duration // since Buffer.epoch
}

// Stats is a snapshot of the buffer's state and counters since Open.
type Stats struct {
	Pending        int       `json:"pending"`         // records appended and not yet acked (tail + disk, minus acks not yet applied)
	PendingBytes   int64     `json:"pending_bytes"`   // sum of len(Data) over Pending
	Tail           int       `json:"tail"`            // pending records not yet committed to disk
	OldestAppended time.Time `json:"oldest_appended"` // Appended of the oldest pending record (the caller's time); zero if none
	NextSeq        uint64    `json:"next_seq"`        // the seq the next Append will get
	ReservedSeq    uint64    `json:"reserved_seq"`    // highest seq durably reserved

	DroppedMaxBytes uint64 `json:"dropped_max_bytes"` // records dropped because MaxBytes was exceeded
	DroppedMaxAge   uint64 `json:"dropped_max_age"`   // records dropped because they were older than MaxAge
	DroppedInvalid  uint64 `json:"dropped_invalid"`   // undecodable record values found on disk and deleted

	Commits       uint64 `json:"commits"`         // successful commit transactions
	CommitErrors  uint64 `json:"commit_errors"`   // failed commit transactions (e.g. disk full); the tail was kept
	LastCommitErr string `json:"last_commit_err"` // text of the last commit error; "" after a successful commit
	Quarantined   uint64 `json:"quarantined"`     // database files moved aside by Open
	Unfinished    uint64 `json:"unfinished"`      // files a power cut left while bbolt created them, started anew by Open (not damage)
	Compactions   uint64 `json:"compactions"`     // successful compactions
	SeqGap        uint64 `json:"seq_gap"`         // sequence numbers skipped at Open after an unclean stop
	// Checking: the background check of a large file runs (see Open); until
	// it ends, Pending and the reads count only this run's records.
	Checking bool `json:"checking"`
}

// entry is one record in the in-memory tail.
type entry struct {
	seq   uint64
	data  []byte
	at    time.Time     // the caller's time, given to Append
	born  time.Duration // monotonic time of the Append since Buffer.epoch: its commit deadline is born + CommitInterval
	acked bool
}

// Buffer is a durable FIFO of byte records. Create it with Open.
type Buffer struct {
	path    string
	sidecar string
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	epoch   time.Time // monotonic origin of entry.born; real time even when Options.Now is a test clock

	// kick wakes Run's commit loop (see commitLoop.kick); nil while Run is
	// not running. Guarded by mu.
	kick chan struct{}

	// commitMu serializes everything that writes the database: commit,
	// reservation, compaction, Close. Lock order: commitMu, then dbMu, then mu.
	// mu is never held across a bbolt call.
	commitMu sync.Mutex

	// dbMu guards the db pointer: readers hold it shared, the compaction swap
	// and Close hold it exclusively.
	dbMu sync.RWMutex
	db   *bolt.DB

	mu        sync.Mutex
	closed    bool
	running   bool
	readOnly  bool    // opened by OpenReadOnly; set before use, never changed
	tail      []entry // ascending seq; acked entries stay until the next commit
	tailLive  int
	tailBytes int64
	// ackedDisk holds committed records acked since the last commit, seq to
	// data length; the next commit deletes them.
	ackedDisk      map[uint64]int64
	ackedDiskBytes int64
	ackedDiskMax   uint64 // highest seq in ackedDisk, 0 if empty
	inflight       uint64 // highest seq the commit in flight writes, 0 if none
	diskCount      int
	diskBytes      int64
	diskOldest     time.Time
	latest         time.Time // the time of the last record appended (at Open: of the newest on disk); MaxAge counts back from it
	next           uint64    // next seq to hand out
	hwm            uint64    // highest reserved seq; next <= hwm+1
	st             Stats     // counters only
	notify         chan struct{}
	queued         [queuedRing]queuedAt // append instants by seq % queuedRing, for Record.Queued

	lastDropLog    time.Time
	dropsUnlogged  [2]uint64 // max bytes, max age
	lastErrLog     time.Time
	errsUnlogged   uint64
	lastSideLog    time.Time // last warning about a failed sidecar write
	lastReserveLog time.Time // last warning about a synchronous reservation
	// journal, while a compaction copies, holds the record keys each commit
	// wrote or deleted since the copy began; nil otherwise.
	journal map[string]struct{}

	// checking is set while the background check of a large file runs
	// (bgcheck.go): until it ends, only records at or above sessionFirst
	// (committed by this process, in pages it wrote) are read from disk,
	// and nothing is evicted or compacted. checkDone is closed when the
	// check ends (nil if none ran); checkStop asks it to stop (Close).
	checking     bool
	sessionFirst uint64
	checkDone    chan struct{}
	checkStop    chan struct{}
	lastCompact  time.Time
	syncReserves int // reservations Append had to wait for; guarded by commitMu

	// Test hooks, nil in production.
	commitHook   func(tx *bolt.Tx) error // called inside the commit transaction
	afterCommit  func(last uint64)       // called after each successful commit with the last seq it wrote (0: none)
	readHook     func()                  // called between a read's tail and disk looks
	compactHook  func()                  // called after each transaction of a compaction's copy
	compactMin   int64                   // minimum file size worth compacting
	compactEvery time.Duration           // minimum time between compaction checks
}

// Append assigns the next sequence number, calls encode(seq) to build the
// record, and puts it in the in-memory tail. It does not wait on disk unless
// the reserved sequence block is exhausted (commits failing for a long time).
// If encode fails, the seq is not consumed. encode runs under the buffer's
// lock: it must not call back into the Buffer.
//
// at is the record's time on the caller's clock (the agent passes the fix's
// GNSS time). MaxAge ages records by these times alone, counting back from
// the last one appended, so a step of the gateway's clock ages nothing. The
// caller must vouch for at: one far in the future would age every record
// before it. A time before 2025 means "unknown" and is never aged.
func (b *Buffer) Append(at time.Time, encode func(seq uint64) ([]byte, error)) (uint64, error) {
	// The value layout holds int64 Unix nanoseconds: a time it cannot hold
	// (the zero Time, or after 2262) is stored as unknown (1970).
	if ns := at.UnixNano(); time.Unix(0, ns).Equal(at) {
		at = time.Unix(0, ns)
	} else {
		at = time.Unix(0, 0)
	}
	if err := b.lockWritable(); err != nil {
		return 0, err
	}
	if b.next > b.hwm {
		b.mu.Unlock()
		if err := b.reserveNow(); err != nil {
			return 0, err
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return 0, ErrClosed
		}
		if b.next > b.hwm {
			b.mu.Unlock()
			return 0, fmt.Errorf("append: %w", ErrSeqUnavailable)
		}
	}
	seq := b.next
	data, err := encode(seq)
	if err != nil {
		b.mu.Unlock()
		return 0, fmt.Errorf("append seq %d: encode: %w", seq, err)
	}
	b.next++
	born := time.Since(b.epoch)
	b.tail = append(b.tail, entry{seq: seq, data: data, at: at, born: born})
	b.queued[seq%queuedRing] = queuedAt{seq: seq, born: born}
	b.latest = at
	b.tailLive++
	if b.tailLive == 1 {
		b.kickLoop() // the first deadline in the tail: the loop may be sleeping without one
	}
	b.tailBytes += int64(len(data))
	b.mu.Unlock()

	select {
	case b.notify <- struct{}{}:
	default:
	}
	return seq, nil
}

// Notify returns a channel that receives a value (without blocking the
// sender; capacity 1) after each Append.
func (b *Buffer) Notify() <-chan struct{} { return b.notify }

// tailIndex returns the index of the first tail entry with seq >= s.
// Caller holds mu.
func (b *Buffer) tailIndex(s uint64) int {
	return sort.Search(len(b.tail), func(i int) bool { return b.tail[i].seq >= s })
}

func (b *Buffer) record(e entry) Record {
	return Record{Seq: e.seq, Data: slices.Clone(e.data), Appended: e.at, Queued: b.epoch.Add(e.born)}
}

// setQueued fills Record.Queued of records read from disk from the ring of
// this Buffer's latest appends. Caller holds mu.
func (b *Buffer) setQueued(recs []Record) {
	for i := range recs {
		if q := b.queued[recs[i].Seq%queuedRing]; recs[i].Queued.IsZero() && q.seq == recs[i].Seq && q.seq != 0 {
			recs[i].Queued = b.epoch.Add(q.born)
		}
	}
}

// scanDisk reads up to max committed records not in acked, walking the records bucket from first in the
// direction of step: Oldest walks forward from a seq, Newest backward from the last.
func (b *Buffer) scanDisk(max int, acked map[uint64]struct{}, first, step func(*pairCursor) ([]byte, []byte)) ([]Record, error) {
	var disk []Record
	err := b.view(func(tx *bolt.Tx) error {
		c := newPairCursor(tx)
		for k, v := first(c); k != nil && len(disk) < max; k, v = step(c) {
			r, ok, err := diskRecord(k, v, acked)
			if err != nil {
				return err
			}
			if ok {
				disk = append(disk, r)
			}
		}
		return nil
	})
	return disk, err
}

// snapshotAcked copies the seqs > after that a disk scan must skip: committed records acked since the last
// commit, and records acked in the tail that the commit in flight is writing. That commit moves them to
// ackedDisk when it settles, which can happen after this snapshot and before the scan finds them on disk.
// A drain acks what it read, so Oldest(after) copies almost nothing instead of every ack since the last
// commit. Caller holds mu.
func (b *Buffer) snapshotAcked(after uint64) map[uint64]struct{} {
	m := make(map[uint64]struct{})
	for i := b.tailIndex(after + 1); i < len(b.tail) && b.tail[i].seq <= b.inflight; i++ {
		if b.tail[i].acked {
			m[b.tail[i].seq] = struct{}{}
		}
	}
	if after >= b.ackedDiskMax {
		return m
	}
	for s := range b.ackedDisk {
		if s > after {
			m[s] = struct{}{}
		}
	}
	return m
}

// Oldest returns up to max pending records with Seq > after, ascending.
// Records acked concurrently may still be returned.
func (b *Buffer) Oldest(after uint64, max int) ([]Record, error) {
	if max <= 0 || after == math.MaxUint64 {
		return nil, nil
	}
	// The tail is read before the disk: a record committed in between is
	// seen twice (deduplicated), never missed.
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	var out []Record
	for i := b.tailIndex(after + 1); i < len(b.tail) && len(out) < max; i++ {
		if !b.tail[i].acked {
			out = append(out, b.record(b.tail[i]))
		}
	}
	onDisk := b.diskCount > 0
	acked := b.snapshotAcked(after)
	if b.checking && after < b.sessionFirst-1 {
		after = b.sessionFirst - 1 // below: pages the check has not proven yet
	}
	b.mu.Unlock()
	if b.readHook != nil {
		b.readHook()
		onDisk = true
	}
	if !onDisk {
		return out, nil
	}

	disk, err := b.scanDisk(max, acked,
		func(c *pairCursor) ([]byte, []byte) { return c.Seek(seqKey(after + 1)) }, (*pairCursor).Next)
	if err != nil {
		return nil, fmt.Errorf("read oldest after seq %d: %w", after, err)
	}
	b.mu.Lock()
	b.setQueued(disk)
	b.mu.Unlock()
	return mergeRecords(disk, out, max, func(a, b uint64) int { return cmpU64(a, b) }), nil
}

// Newest returns up to max of the newest pending records, descending Seq.
func (b *Buffer) Newest(max int) ([]Record, error) {
	if max <= 0 {
		return nil, nil
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	var out []Record
	for i := len(b.tail) - 1; i >= 0 && len(out) < max; i-- {
		if !b.tail[i].acked {
			out = append(out, b.record(b.tail[i]))
		}
	}
	onDisk := b.diskCount > 0 && len(out) < max
	acked := b.snapshotAcked(0)
	floor := uint64(0)
	if b.checking {
		floor = b.sessionFirst // below: pages the check has not proven yet
	}
	b.mu.Unlock()
	if b.readHook != nil {
		b.readHook()
		onDisk = len(out) < max
	}
	if !onDisk {
		return out, nil
	}
	above := func(k, v []byte) ([]byte, []byte) {
		if s, ok := keySeq(k); ok && s < floor {
			return nil, nil
		}
		return k, v
	}
	disk, err := b.scanDisk(max, acked,
		func(c *pairCursor) ([]byte, []byte) { return above(c.Last()) },
		func(c *pairCursor) ([]byte, []byte) { return above(c.Prev()) })
	if err != nil {
		return nil, fmt.Errorf("read newest: %w", err)
	}
	b.mu.Lock()
	b.setQueued(disk)
	b.mu.Unlock()
	return mergeRecords(disk, out, max, func(a, b uint64) int { return cmpU64(b, a) }), nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// mergeRecords merges two lists sorted by cmp, dropping duplicate seqs, and
// keeps the first max.
func mergeRecords(a, b []Record, max int, cmp func(x, y uint64) int) []Record {
	out := make([]Record, 0, min(max, len(a)+len(b)))
	i, j := 0, 0
	for len(out) < max && (i < len(a) || j < len(b)) {
		switch {
		case j >= len(b) || (i < len(a) && cmp(a[i].Seq, b[j].Seq) < 0):
			out = append(out, a[i])
			i++
		case i >= len(a) || cmp(a[i].Seq, b[j].Seq) > 0:
			out = append(out, b[j])
			j++
		default: // same seq: committed while we read
			out = append(out, b[j])
			i++
			j++
		}
	}
	return out
}

func diskRecord(k, v []byte, acked map[uint64]struct{}) (Record, bool, error) {
	seq, ok := keySeq(k)
	if !ok {
		return Record{}, false, fmt.Errorf("record key %x is not 8 bytes", k)
	}
	if _, gone := acked[seq]; gone {
		return Record{}, false, nil
	}
	at, data, err := decodeValue(v)
	if err != nil {
		return Record{}, false, fmt.Errorf("seq %d: %w", seq, err)
	}
	return Record{Seq: seq, Data: slices.Clone(data), Appended: at}, true, nil
}

// Ack deletes the records with these seqs, in any order. Unknown or already
// acked seqs are ignored. A record still in the tail is forgotten and never
// written; a committed one is deleted at the next commit.
func (b *Buffer) Ack(seqs ...uint64) error {
	if err := b.lockWritable(); err != nil {
		return err
	}
	var rest []uint64
	for _, s := range seqs {
		if s >= b.next {
			continue
		}
		if i := b.tailIndex(s); i < len(b.tail) && b.tail[i].seq == s {
			if e := &b.tail[i]; !e.acked {
				e.acked = true
				b.tailLive--
				b.tailBytes -= int64(len(e.data))
				e.data = nil
			}
			continue
		}
		// While the background check runs, no read returned a record
		// below sessionFirst, and looking one up would read pages not yet
		// proven: such an ack is dropped (delivery is at least once).
		if _, ok := b.ackedDisk[s]; !ok && (!b.checking || s >= b.sessionFirst) {
			rest = append(rest, s)
		}
	}
	onDisk := b.diskCount > 0
	b.mu.Unlock()
	if len(rest) == 0 || !onDisk {
		return nil
	}

	// Look the sizes up so Stats stays exact until the next commit.
	found := make(map[uint64]int64, len(rest))
	slices.Sort(rest) // ascending: each group is decoded once
	err := b.view(func(tx *bolt.Tx) error {
		look := newRecordLookup(tx)
		for _, s := range rest {
			if v := look.get(seqKey(s)); v != nil {
				found[s] = int64(max(len(v)-valueHeader, 0))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s, n := range found {
		b.markAckedDisk(s, n)
	}
	return nil
}

// lockWritable locks mu for a method that writes, or returns why it may
// not: ErrReadOnly or ErrClosed (with mu unlocked).
func (b *Buffer) lockWritable() error {
	if b.readOnly {
		return ErrReadOnly
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// markAckedDisk records that committed record s, of n data bytes, was acked.
// Caller holds mu.
func (b *Buffer) markAckedDisk(s uint64, n int64) {
	if _, ok := b.ackedDisk[s]; ok {
		return
	}
	if len(b.ackedDisk) == 0 {
		b.kickLoop() // a deletion to commit: the loop may be sleeping without a deadline
	}
	b.ackedDisk[s] = n
	b.ackedDiskBytes += n
	b.ackedDiskMax = max(b.ackedDiskMax, s)
}

// Stats returns a snapshot of the buffer's state and counters.
func (b *Buffer) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.st
	s.Tail = b.tailLive
	s.Pending = b.tailLive + b.diskCount - len(b.ackedDisk)
	s.PendingBytes = b.tailBytes + b.diskBytes - b.ackedDiskBytes
	s.NextSeq = b.next
	s.ReservedSeq = b.hwm
	s.Checking = b.checking
	if b.diskCount > len(b.ackedDisk) {
		s.OldestAppended = b.diskOldest
	} else {
		for _, e := range b.tail {
			if !e.acked {
				s.OldestAppended = e.at
				break
			}
		}
	}
	return s
}

// view runs fn in a read transaction, turning a panic or memory fault from a
// damaged file into an error.
func (b *Buffer) view(fn func(tx *bolt.Tx) error) error {
	b.dbMu.RLock()
	defer b.dbMu.RUnlock()
	if b.db == nil {
		return ErrClosed
	}
	return guard(func() error { return b.db.View(fn) })
}
