package buffer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

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
