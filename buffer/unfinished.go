package buffer

import (
	"fmt"
	"io"
	"os"
)

// unfinishedCreation reports whether the file at path is what a power cut
// leaves of a database bbolt was still creating: bbolt writes its first four
// pages (two meta pages, the freelist, an empty leaf) and fdatasyncs them
// before anything else, and the file grows past four pages only in the first
// commit. A cut before that sync leaves the file empty, short, or with some of
// those pages missing (zeros) or torn. Such a file holds nothing, so it is not
// damage: Open starts it anew instead of moving it aside.
//
// It is one only if it is at most four pages long, no meta page in it is a
// valid one past bbolt's initial two (txid 0 and 1: records come later), and
// each page starts with its own id or zeros, as bbolt's or none of its writes
// would leave it. Garbage, or a file that held records, fails one of these.
func unfinishedCreation(path string, size int64) (bool, error) {
	ps := int64(os.Getpagesize())
	if size > 4*ps {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, size)
	if _, err := io.ReadFull(f, buf); err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	for i := int64(0); i*ps < size; i++ {
		p := buf[i*ps : min(size, (i+1)*ps)]
		if len(p) < 8 {
			if !allZero(p) {
				return false, nil
			}
			continue
		}
		if id := ne.Uint64(p); id != 0 && id != uint64(i) {
			return false, nil
		}
		if i < 2 {
			if m, err := parseMeta(p); err == nil && m.txid > 1 {
				return false, nil
			}
		}
	}
	return true, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
