package buffer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// lockTimeout bounds the wait for bbolt's file lock: a second process on the
// same file gets an error instead of hanging forever.
const lockTimeout = 2 * time.Second

// Open opens (creating it and its directories if needed) the buffer at path.
// A damaged database, or one written by a newer format version, is moved
// aside and replaced by an empty one; the sequence numbers still continue
// past any handed out before, thanks to the sidecar file path+".seq".
// Open checks the whole file of a database under 8 MiB (bbolt's consistency
// check), which reads every page once. A larger file (a backlog: 200 MiB
// take 10 s on gateway flash) is checked in two steps, so that the first
// live fix does not wait for a read of it all: Open proves the pages a
// commit reads, and a goroutine it starts proves the rest while Append,
// commits and reads of this run's records go on; the backlog is read once
// it is proven (Stats.Checking), and damage found then is handled as Open's
// (bgcheck.go). Call Run for group commits.
func Open(path string, opts Options) (*Buffer, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("open buffer %s: %w", path, err)
	}
	opts = opts.withDefaults()
	if err := mkdirSynced(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("open buffer: %w", err)
	}
	b := &Buffer{
		path:         path,
		sidecar:      path + sidecarSuffix,
		opts:         opts,
		log:          opts.Log.With("component", "buffer", "path", path),
		now:          opts.Now,
		epoch:        time.Now(),
		ackedDisk:    make(map[uint64]int64),
		notify:       make(chan struct{}, 1),
		compactMin:   4 << 20,
		compactEvery: 10 * time.Minute,
	}
	side, err := readSidecar(b.sidecar)
	if err != nil {
		// The database's own mark still holds; a lost sidecar only matters if
		// the database is lost too.
		b.log.Warn("ignoring unreadable seq sidecar", "err", err)
		side = 0
	}
	for attempt := 0; ; attempt++ {
		err := b.openOnce(side)
		if err == nil {
			b.sessionFirst = b.next
			b.dropCache() // the check read every page; fresh pages make small folios
			if b.checking {
				if err := b.startCheck(); err != nil {
					_ = b.Close()
					return nil, fmt.Errorf("open buffer %s: %w", path, err)
				}
			}
			return b, nil
		}
		if !errors.Is(err, errCorrupt) || attempt > 0 {
			return nil, fmt.Errorf("open buffer %s: %w", path, err)
		}
		if qerr := b.quarantine(err); qerr != nil {
			return nil, fmt.Errorf("open buffer %s: %w (after %w)", path, qerr, err)
		}
	}
}

// openOnce opens and validates the file. Errors wrapping errCorrupt mean the
// file should be moved aside.
func (b *Buffer) openOnce(side uint64) error {
	// A retry after quarantine starts from an empty file: nothing of the bad one's counts may carry over.
	b.diskCount, b.diskBytes, b.diskOldest, b.latest = 0, 0, time.Time{}, time.Time{}
	fi, err := os.Stat(b.path)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", b.path)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err == nil {
		if err := b.dropUnfinished(fi.Size()); err != nil {
			return err
		}
		fi, err = os.Stat(b.path)
	}
	created := errors.Is(err, fs.ErrNotExist)
	// A large file is proven in two steps: here only the pages a commit
	// reads (its spines), the rest in the background (bgcheck.go), so
	// that the first live fix does not wait for a read of the whole file.
	quick := !created && fi.Size() >= b.opts.bgCheckFrom
	if !created {
		if err := preflightPath(b.path, &treeCheck{Spine: quick}); err != nil {
			return err
		}
	}
	var db *bolt.DB
	err = guard(func() error {
		var oerr error
		bo := &bolt.Options{Timeout: lockTimeout}
		if quick {
			// bbolt remaps the file to grow it only once every reader is done,
			// and the background check reads for seconds: map room for 16 MiB
			// of growth (weeks offline at 1 Hz) so that no commit waits for it.
			bo.InitialMmapSize = int(fi.Size()) + 16<<20
		}
		db, oerr = bolt.Open(b.path, 0o640, bo)
		return oerr
	})
	if err != nil {
		if isCorruption(err) {
			return fmt.Errorf("%w: %w", errCorrupt, err)
		}
		if errors.Is(err, berrors.ErrTimeout) {
			return fmt.Errorf("database is locked by another process: %w", err)
		}
		return err
	}
	if created {
		// The new file's name must be on disk before anything is committed
		// to it: a power cut would otherwise take the file, and every record
		// in it, with the directory's unwritten block.
		if err := syncDir(filepath.Dir(b.path)); err != nil {
			_ = db.Close()
			return err
		}
	}
	if err := b.load(db, side, quick); err != nil {
		_ = db.Close()
		return err
	}
	b.db = db
	b.checking = quick
	return nil
}

// dropUnfinished removes what a power cut left of a database being created
// (unfinishedCreation): it holds nothing, so it is neither moved aside nor
// counted as a quarantine.
func (b *Buffer) dropUnfinished(size int64) error {
	unfinished, err := unfinishedCreation(b.path, size)
	if err != nil || !unfinished {
		return err
	}
	if err := os.Remove(b.path); err != nil {
		return fmt.Errorf("remove unfinished database: %w", err)
	}
	if err := syncDir(filepath.Dir(b.path)); err != nil {
		return err
	}
	b.st.Unfinished++
	b.log.Warn("database creation was cut short (power cut); starting it anew", "size", size)
	return nil
}

// mkdirSynced creates dir and its missing parents, syncing the parent of each
// one created: a power cut must not take the directory, and with it the seq
// sidecar, after seqs were handed out.
func mkdirSynced(dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		missing = append(missing, d)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := syncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

// isCorruption tells a damaged file from a problem of the environment
// (permissions, lock, no space, no memory) that moving the file would not fix.
func isCorruption(err error) bool {
	if errors.Is(err, berrors.ErrTimeout) {
		return false
	}
	var pe *fs.PathError
	var errno syscall.Errno
	if errors.As(err, &pe) || errors.As(err, &errno) {
		return false
	}
	return true
}

// scanResult is what a walk of every committed record found.
type scanResult struct {
	count          int
	bytes          int64
	oldest, latest time.Time
	invalid        [][]byte // keys of undecodable records
	// tick, when set, is called every tickEvery elements the scan reads: the
	// background check drops the pages it has mapped (see releaseMapped).
	tick func()
	seen int
}

// tickEvery is how many elements a scan reads between ticks: 1 MiB of
// 250 B records, 3 to 6 MiB of the mapping as measured (the walk maps branch
// pages too, and a fault may map a whole large folio of the page cache,
// which the check's in-order read filled). At 1<<16 (16-23 MiB between drops) the
// check after a restart with a million buffered fixes held 26 MiB of the
// file resident, most of the RSS target; each drop is one madvise over the
// mapping, a few hundred for that file.
const tickEvery = 1 << 12

func (r *scanResult) step() {
	r.seen++
	if r.tick != nil && r.seen%tickEvery == 0 {
		r.tick()
	}
}

// scan reads every page of an open database (on this goroutine, where a
// fault is recoverable), checks the format version, and sums the records.
// It returns the keys of undecodable records.
func (b *Buffer) scan(db *bolt.DB) ([][]byte, error) {
	fi, err := os.Stat(b.path)
	if err != nil {
		return nil, err
	}
	var r scanResult
	err = guard(func() error {
		return db.View(func(tx *bolt.Tx) error { return scanTx(tx, fi.Size(), &r) })
	})
	if err != nil {
		return nil, corruptRead(err)
	}
	b.diskCount, b.diskBytes, b.diskOldest, b.latest = r.count, r.bytes, r.oldest, r.latest
	return r.invalid, nil
}

// corruptRead marks an error of a read of every page as damage: a panic or
// fault while reading means a damaged file.
func corruptRead(err error) error {
	if !errors.Is(err, errCorrupt) {
		return fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return err
}

// checkMetaTx checks the size the meta page claims, the format version and
// the seq marks: what Open needs before it trusts the file at all.
func checkMetaTx(tx *bolt.Tx, fileSize int64) error {
	if tx.Size() > fileSize {
		return fmt.Errorf("%w: truncated: meta page says %d bytes, file has %d", errCorrupt, tx.Size(), fileSize)
	}
	m := tx.Bucket(bucketMeta)
	if m == nil {
		return nil
	}
	if v := m.Get(keyFormat); v != nil {
		f, ok := getU64(v)
		if !ok {
			return fmt.Errorf("%w: meta format value %x", errCorrupt, v)
		}
		if f > formatVersion {
			return fmt.Errorf("%w: format version %d is newer than %d", errCorrupt, f, formatVersion)
		}
	}
	return checkMarks(m)
}

// scanTx is scan's walk, in tx: every page, then every record of both
// buckets, oldest first, summed into r.
func scanTx(tx *bolt.Tx, fileSize int64, r *scanResult) error {
	if err := checkMetaTx(tx, fileSize); err != nil {
		return err
	}
	// Walk every page on this goroutine first, where a fault is a
	// recoverable panic; tx.Check later runs on its own goroutine,
	// where a fault would kill the process, over pages already read.
	if err := walkAll(tx, r.step); err != nil {
		return err
	}
	// Records and groups interleave by runs: the oldest and the latest are
	// those of the lowest and the highest key seen.
	var lo, hi []byte
	add := func(k, v []byte) {
		r.step()
		at, data, derr := decodeValue(v)
		if _, ok := keySeq(k); !ok || derr != nil {
			r.invalid = append(r.invalid, append([]byte(nil), k...))
			return
		}
		if lo == nil || bytes.Compare(k, lo) < 0 {
			lo, r.oldest = append(lo[:0], k...), at
		}
		if hi == nil || bytes.Compare(k, hi) > 0 {
			hi, r.latest = append(hi[:0], k...), at
		}
		r.count++
		r.bytes += int64(len(data))
	}
	var recentLo []byte // recent's lowest key
	for _, bk := range []*bolt.Bucket{tx.Bucket(bucketRecords), tx.Bucket(bucketRecent)} {
		if bk == nil {
			continue
		}
		recent := bk == tx.Bucket(bucketRecent)
		if err := bk.ForEach(func(k, v []byte) error {
			if _, ok := keySeq(k); ok && recent && recentLo == nil {
				recentLo = k
			}
			add(k, v)
			return nil
		}); err != nil {
			return err
		}
	}
	gs := tx.Bucket(bucketGroups)
	if gs == nil {
		return nil
	}
	// A group's records must lie below the next group's key and recent's
	// keys: reads, acks and evictions look a record up in the group of the
	// last key at or below its own (floorGroup). A damaged seq delta past
	// them would hide the records it overlaps from reads, and be acked
	// without ever being deleted.
	var prevLast []byte
	err := gs.ForEach(func(gk, v []byte) error {
		if v != nil {
			return fmt.Errorf("%w: groups holds a value at %x", errCorrupt, gk)
		}
		recs, err := decodeGroup(gk, groupValue(gs, gk))
		if err != nil {
			return fmt.Errorf("%w: %w", errCorrupt, err)
		}
		if prevLast != nil && bytes.Compare(prevLast, gk) >= 0 {
			return fmt.Errorf("%w: the group before %x reaches seq %x", errCorrupt, gk, prevLast)
		}
		for i := range recs {
			add(recs[i].key[:], recs[i].v)
		}
		prevLast = append(prevLast[:0], recs[len(recs)-1].key[:]...)
		return nil
	})
	if err == nil && prevLast != nil && recentLo != nil && bytes.Compare(prevLast, recentLo) >= 0 {
		err = fmt.Errorf("%w: a group reaches seq %x, recent starts at %x", errCorrupt, prevLast, recentLo)
	}
	return err
}

// quickScan is scan for a file whose full check runs in the background
// (bgcheck.go): it checks the meta page and reads the newest record's time,
// down the rightmost path Open's spine check proved, and recent, inline in
// the root page, and nothing else. It returns the keys of recent's
// undecodable records: the next commit of many records would move them
// into a group, where a key that is not a seq spoils the whole group.
func (b *Buffer) quickScan(db *bolt.DB) ([][]byte, error) {
	fi, err := os.Stat(b.path)
	if err != nil {
		return nil, err
	}
	var invalid [][]byte
	err = guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			if err := checkMetaTx(tx, fi.Size()); err != nil {
				return err
			}
			if tx.Bucket(bucketRecords) == nil {
				return nil
			}
			if rc := tx.Bucket(bucketRecent); rc != nil {
				_ = rc.ForEach(func(k, v []byte) error {
					if _, _, derr := decodeValue(v); derr != nil || len(k) != 8 {
						invalid = append(invalid, bytes.Clone(k))
					}
					return nil
				})
			}
			if _, v := newPairCursor(tx).Last(); v != nil {
				if at, _, derr := decodeValue(v); derr == nil {
					b.latest = at
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, corruptRead(err)
	}
	return invalid, nil
}

// load validates an open database, recovers the sequence state and the
// accounting, and reserves the first block of sequence numbers.
func (b *Buffer) load(db *bolt.DB, side uint64, quick bool) error {
	var invalid [][]byte
	var err error
	if quick {
		invalid, err = b.quickScan(db)
	} else {
		invalid, err = b.scan(db)
	}
	if err != nil {
		return err
	}

	var dbHwm, committed, clean, from uint64
	var hasClean bool
	err = guard(func() error {
		return db.Update(func(tx *bolt.Tx) error {
			m, err := tx.CreateBucketIfNotExists(bucketMeta)
			if err != nil {
				return err
			}
			if _, err := tx.CreateBucketIfNotExists(bucketRecords); err != nil {
				return err
			}
			if _, err := tx.CreateBucketIfNotExists(bucketGroups); err != nil {
				return err
			}
			slices.SortFunc(invalid, bytes.Compare)
			if err := deleteRecords(tx, invalid, func([]byte) {}); err != nil {
				return err
			}
			dbHwm, _ = getU64(m.Get(keyReserved))
			committed, _ = getU64(m.Get(keyCommitted))
			clean, hasClean = getU64(m.Get(keyClean))
			if err := m.Delete(keyClean); err != nil {
				return err
			}
			from, _ = getU64(m.Get(keyFormat))
			return migrate(tx, from)
		})
	})
	if err != nil {
		if isCorruption(err) {
			return fmt.Errorf("%w: initialise database: %w", errCorrupt, err)
		}
		return fmt.Errorf("initialise database: %w", err)
	}
	// The consistency check runs after one write transaction: if only one
	// meta page was torn, bbolt opened the other, and the write just
	// rewrote the torn one (meta pages alternate by transaction id).
	err = nil
	if !quick {
		err = guard(func() error { return db.View(checkTx) })
	}
	if err != nil {
		return err
	}
	if from != 0 && from < formatVersion {
		b.log.Info("upgraded buffer format", "from", from, "to", formatVersion, "records", b.diskCount)
	}
	if len(invalid) > 0 {
		b.st.DroppedInvalid += uint64(len(invalid))
		b.log.Warn("deleted undecodable records", "count", len(invalid))
	}

	// Decide the next seq. Seq 0 is never handed out, so "after 0" means "all".
	var gapFrom uint64
	b.next, gapFrom = nextSeq(side, dbHwm, committed, clean, hasClean)
	switch {
	case side > dbHwm:
		b.log.Info("database behind seq sidecar; continuing past the sidecar's mark",
			"db_reserved", dbHwm, "sidecar_reserved", side, "next_seq", b.next)
	case gapFrom > 0:
		b.st.SeqGap = dbHwm - gapFrom + 1
		b.log.Info("unclean stop: skipping seqs that may have been handed out",
			"gap_from", gapFrom, "gap_to", dbHwm, "next_seq", b.next)
	}
	b.hwm = b.next - 1
	if b.next > maxSeq {
		b.log.Error("the seq range is used up: appends will fail", "next_seq", b.next)
		return nil
	}
	b.db = db
	defer func() { b.db = nil }()
	hwm := b.blockEnd(b.next)
	if err := b.writeReserved(hwm); err != nil {
		return err
	}
	// The backlog can be delivered without a sidecar; Append tries again.
	if err := b.publishReserved(hwm); err != nil {
		b.warnSidecar(err)
	}
	return nil
}

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

// walkAll visits every key of every bucket, nested ones included.
func walkAll(tx *bolt.Tx, step func()) error {
	var walk func(bk *bolt.Bucket) error
	walk = func(bk *bolt.Bucket) error {
		return bk.ForEach(func(k, v []byte) error {
			step()
			if v == nil {
				if child := bk.Bucket(k); child != nil {
					return walk(child)
				}
			}
			return nil
		})
	}
	return tx.ForEach(func(_ []byte, bk *bolt.Bucket) error { return walk(bk) })
}

// quarantine moves a damaged database aside as NAME.corrupt-<UTC timestamp>.
func (b *Buffer) quarantine(cause error) error {
	dst := b.path + ".corrupt-" + b.now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(b.path, dst); err != nil {
		return fmt.Errorf("move damaged database aside: %w", err)
	}
	if err := syncDir(filepath.Dir(b.path)); err != nil {
		return err
	}
	b.st.Quarantined++
	b.log.Error("damaged database moved aside; starting a new one", "moved_to", dst, "cause", cause)
	return nil
}

// checkTx runs bbolt's consistency check over tx, draining it to the end.
func checkTx(tx *bolt.Tx) error {
	var first error
	for cerr := range tx.Check() {
		if first == nil { // keep draining so the checker goroutine ends
			first = fmt.Errorf("%w: consistency check: %w", errCorrupt, cerr)
		}
	}
	return first
}

// guard runs fn, turning a panic or a memory fault (bbolt reading a damaged
// or truncated mmap) into an error.
func guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bbolt panic: %v", r)
		}
	}()
	return fn()
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
