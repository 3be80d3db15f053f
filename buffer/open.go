package buffer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
