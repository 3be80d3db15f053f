package buffer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	bolt "go.etcd.io/bbolt"
)

// OpenReadOnly opens an existing buffer for inspection (gps-agent fixes and
// status while the daemon is stopped): Oldest, Newest and Stats work;
// Append, Ack, Commit and Run return ErrReadOnly. It writes nothing, moves
// nothing aside (a damaged file is an error), and takes bbolt's shared
// lock, so it fails after a 2 s timeout while a daemon has the buffer open.
// NextSeq and ReservedSeq in Stats are what the next Open would continue from.
func OpenReadOnly(path string, opts Options) (*Buffer, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("open buffer %s read-only: %w", path, err)
	}
	opts = opts.withDefaults()
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open buffer read-only: %w", err)
	}
	if fi.Size() == 0 {
		return nil, fmt.Errorf("open buffer %s read-only: %w: zero-length file", path, errCorrupt)
	}
	if err := preflight(path); err != nil {
		return nil, fmt.Errorf("open buffer %s read-only: %w", path, err)
	}
	b := &Buffer{
		path:      path,
		sidecar:   path + sidecarSuffix,
		opts:      opts,
		log:       opts.Log.With("component", "buffer", "path", path),
		now:       opts.Now,
		ackedDisk: make(map[uint64]int64),
		notify:    make(chan struct{}, 1),
		readOnly:  true,
	}
	var db *bolt.DB
	err = guard(func() error {
		var oerr error
		db, oerr = bolt.Open(path, 0o640, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
		return oerr
	})
	if err != nil {
		return nil, fmt.Errorf("open buffer %s read-only: %w", path, err)
	}
	if _, err := b.scan(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open buffer %s read-only: %w", path, err)
	}
	var hwm, committed, clean uint64
	var hasClean bool
	_ = db.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			hwm, _ = getU64(m.Get(keyReserved))
			committed, _ = getU64(m.Get(keyCommitted))
			clean, hasClean = getU64(m.Get(keyClean))
		}
		return nil
	})
	side, err := readSidecar(b.sidecar)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		side = 0
	}
	// What the next Open would continue from.
	b.next, _ = nextSeq(side, hwm, committed, clean, hasClean)
	b.hwm = max(hwm, side, b.next-1)
	b.db = db
	return b, nil
}
