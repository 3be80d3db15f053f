package buffer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The on-disk layout; FORMAT.md is the prose version of this file.
const (
	// formatVersion is stored in meta/format. A file with a larger value was
	// written by a newer release and is moved aside rather than misread; Open
	// migrates older ones (migrate). Version 2: a record's time is the
	// caller's (GNSS time), not the gateway's clock at Append. Version 3:
	// the newest committed records may sit in bucket recent (see
	// bucketRecent). Version 4: a commit of many records may be one value
	// in a bucket of its own under bucketGroups.
	formatVersion = 4

	// valueVersion is the first byte of every record value.
	valueVersion = 1

	// valueHeader is the version byte plus the record's time (int64 BE unix nanoseconds).
	valueHeader = 1 + 8

	// maxSeq is the last sequence number ever handed out: downstream stores
	// seq as a signed 64-bit integer (Redshift BIGINT, docs/redshift.sql), and
	// stopping there means no arithmetic on a seq or a mark can wrap. A mark
	// beyond it is damage, not history: 2^63 fixes take longer than any truck.
	maxSeq = math.MaxInt64

	sidecarSuffix = ".seq"
	sidecarMagic  = "gps-agent buffer seq v1"
)

var (
	bucketRecords = []byte("records")
	// bucketRecent holds the newest committed records while they fit in a
	// bucket bbolt stores inline, inside the root page: a commit of a few
	// records then writes three pages (root, freelist, meta) instead of the
	// whole path down the records tree. Every key in it is above every key
	// in bucketRecords; the commit that would outgrow the inline limit moves
	// its records into bucketRecords (see stageOrMove).
	bucketRecent = []byte("recent")
	// bucketGroups holds a bucket per large commit, keyed by its first
	// seq, holding that commit's records packed into one value (groups.go).
	bucketGroups = []byte("groups")
	bucketMeta   = []byte("meta")

	keyFormat    = []byte("format")        // uint64 BE: formatVersion
	keyReserved  = []byte("seq_reserved")  // uint64 BE: highest seq that may have been handed out
	keyCommitted = []byte("seq_committed") // uint64 BE: first seq the last commit left off disk (for the gap log)
	keyClean     = []byte("clean_next")    // uint64 BE: next seq, present only after a clean Close
)

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func keySeq(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}

func u64(v uint64) []byte { return seqKey(v) }

func getU64(v []byte) (uint64, bool) { return keySeq(v) }

func encodeValue(at time.Time, data []byte) []byte {
	v := make([]byte, valueHeader+len(data))
	v[0] = valueVersion
	binary.BigEndian.PutUint64(v[1:9], uint64(at.UnixNano()))
	copy(v[valueHeader:], data)
	return v
}

// decodeValue returns the record's time and the data, which aliases v.
func decodeValue(v []byte) (time.Time, []byte, error) {
	if len(v) < valueHeader {
		return time.Time{}, nil, fmt.Errorf("record value of %d bytes is shorter than its %d-byte header", len(v), valueHeader)
	}
	if v[0] != valueVersion {
		return time.Time{}, nil, fmt.Errorf("record value version %d, want %d", v[0], valueVersion)
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9]))), v[valueHeader:], nil
}

// readSidecar returns the high-water mark stored next to the database, or 0
// if there is none.
func readSidecar(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read seq sidecar %s: %w", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) != 2 || lines[0] != sidecarMagic || !strings.HasPrefix(lines[1], "reserved ") {
		return 0, fmt.Errorf("read seq sidecar %s: unexpected content %q", path, truncate(b, 80))
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "reserved "), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read seq sidecar %s: %w", path, err)
	}
	if n > maxSeq {
		return 0, fmt.Errorf("read seq sidecar %s: mark %d is beyond the seq range", path, n)
	}
	return n, nil
}

// writeSidecar replaces the sidecar atomically: temp file, fsync, rename, fsync dir.
func writeSidecar(path string, reserved uint64) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("write seq sidecar: %w", err)
	}
	_, werr := fmt.Fprintf(f, "%s\nreserved %d\n", sidecarMagic, reserved)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write seq sidecar %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write seq sidecar: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		b = b[:n]
	}
	return bytes.ToValidUTF8(b, []byte("?"))
}

// migrate brings a file of format from (0: a new file) to formatVersion,
// inside the transaction that opens it, so an upgrade keeps the backlog.
// Each case upgrades one version and falls through to the next.
func migrate(tx *bolt.Tx, from uint64) error {
	switch from {
	case 1:
		// Format 1 timed each record by the gateway's clock at Append, format
		// 2 by the caller's (GNSS) time; the layout is the same. The old times
		// are the best estimate there is of the records' times, so they stay:
		// one taken before the gateway's clock was set is before 2025 and
		// never aged, one taken by a clock set wrong ages by that error once.
		fallthrough
	case 2:
		// Format 3 adds bucket recent; the backlog stays in records, below
		// every seq recent will hold.
		fallthrough
	case 3:
		// Format 4 adds bucket groups; the backlog stays where it is.
		fallthrough
	default:
	}
	if _, err := tx.CreateBucketIfNotExists(bucketRecent); err != nil {
		return err
	}
	if _, err := tx.CreateBucketIfNotExists(bucketGroups); err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyFormat, u64(formatVersion))
}
