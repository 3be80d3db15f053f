package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// preflight validates the structure of a bbolt file by reading it with
// bounds checks, before bbolt touches it. bbolt trusts its pages: a branch
// page pointing back at an ancestor sends its cursor (and tx.Check) into an
// endless descent that exhausts memory, and an element pointing outside its
// page faults on a goroutine we cannot guard. Both kill the process, and a
// supervisor restarting it would crash-loop, so the page graph is proven a
// tree of in-bounds pages first.
//
// The layout (bbolt v1.x, internal/common): a page is a 16-byte header (id
// u64, flags u16, count u16, overflow u32) then count 16-byte elements;
// branch elements are (pos u32, ksize u32, pgid u64), leaf elements are
// (flags u32, pos u32, ksize u32, vsize u32), with pos relative to the
// element. Integers are in native byte order, as bbolt maps them in memory.
// It was checked against the bbolt release named by preflightBbolt;
// TestPreflightBboltVersion fails when go.mod names another.
const (
	// preflightBbolt is the bbolt release whose page layout this file was
	// last verified against (FORMAT.md, "bbolt's layout").
	preflightBbolt = "v1.5.0"

	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16
	elementSize      = 16
	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01
	noFreelist       = ^uint64(0)
	metaSize         = 64 // magic .. checksum
	metaChecksumAt   = 56
)

var ne = binary.NativeEndian

type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	hwm      uint64 // page count
	txid     uint64
}

func parseMeta(b []byte) (boltMeta, error) {
	if len(b) < pageHeaderSize+metaSize {
		return boltMeta{}, fmt.Errorf("meta page too short")
	}
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	if ne.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, fmt.Errorf("bad magic %#x", ne.Uint32(m[0:]))
	}
	if v := ne.Uint32(m[4:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("bbolt version %d", v)
	}
	h := fnv.New64a()
	h.Write(m[:metaChecksumAt])
	if h.Sum64() != ne.Uint64(m[metaChecksumAt:]) {
		return boltMeta{}, fmt.Errorf("meta checksum mismatch")
	}
	return boltMeta{
		pageSize: ne.Uint32(m[8:]),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		hwm:      ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}, nil
}

// preflight returns an error wrapping errCorrupt for a damaged file, or
// another error if the file cannot be read.
func preflight(path string) error { return preflightPath(path, nil) }

// preflightPath is preflight, tuned by c.
func preflightPath(path string, c *treeCheck) error {
	f, m, err := openMeta(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return preflightTree(f, m, c)
}

// treeCheck tunes preflightTree: Spine checks only the pages a commit
// reads (the freelist, and each bucket's rightmost path, where new keys go);
// Page, when set, is called before each page is read and may stop the check
// by returning an error.
type treeCheck struct {
	Spine bool
	Page  func() error
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, args...))
}

// openMeta opens the file and picks its meta page as bbolt does, checking
// it against the file's size.
func openMeta(path string) (*os.File, boltMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, boltMeta{}, err
	}
	m, err := readMeta(f)
	if err != nil {
		f.Close()
		return nil, boltMeta{}, err
	}
	return f, m, nil
}

func readMeta(f *os.File) (boltMeta, error) {
	fi, err := f.Stat()
	if err != nil {
		return boltMeta{}, err
	}
	size := fi.Size()

	// Pick the meta page as bbolt does: the valid one with the higher txid.
	first := make([]byte, 4096)
	n, err := f.ReadAt(first, 0)
	if err != nil && err != io.EOF {
		return boltMeta{}, err
	}
	m0, err0 := parseMeta(first[:n])
	pageSize := int64(os.Getpagesize())
	if err0 == nil {
		pageSize = int64(m0.pageSize)
	}
	if pageSize < 512 || pageSize > 1<<20 || pageSize&(pageSize-1) != 0 {
		return boltMeta{}, corrupt("page size %d", pageSize)
	}
	second := make([]byte, pageHeaderSize+metaSize)
	n, err = f.ReadAt(second, pageSize)
	if err != nil && err != io.EOF {
		return boltMeta{}, err
	}
	m1, err1 := parseMeta(second[:n])
	var m boltMeta
	switch {
	case err0 == nil && (err1 != nil || m0.txid >= m1.txid):
		m = m0
	case err1 == nil:
		m = m1
	default:
		return boltMeta{}, corrupt("both meta pages invalid: %v; %v", err0, err1)
	}
	if int64(m.pageSize) != pageSize {
		return boltMeta{}, corrupt("meta page size %d, expected %d", m.pageSize, pageSize)
	}
	if m.hwm < 3 || m.hwm > uint64(size/pageSize) {
		return boltMeta{}, corrupt("truncated or bad high-water mark: %d pages of %d B, file has %d B", m.hwm, pageSize, size)
	}
	return m, nil
}

// preflightTree checks the freelist and the page tree of meta m (whole, or
// its spines: see treeCheck). The pages must not change meanwhile: Open
// runs it before bbolt opens the file; the background check, while a read
// transaction of m's txid keeps bbolt from reusing them.
func preflightTree(f *os.File, m boltMeta, c *treeCheck) error {
	if c == nil {
		c = &treeCheck{}
	}
	pageSize := int64(m.pageSize)
	readPage := func(id uint64) ([]byte, error) {
		if c.Page != nil {
			if err := c.Page(); err != nil {
				return nil, err
			}
		}
		if id < 2 || id >= m.hwm {
			return nil, corrupt("page id %d out of range [2, %d)", id, m.hwm)
		}
		hdr := make([]byte, pageHeaderSize)
		if _, err := f.ReadAt(hdr, int64(id)*pageSize); err != nil {
			return nil, readErr(id, err)
		}
		if got := ne.Uint64(hdr); got != id {
			return nil, corrupt("page %d says it is page %d", id, got)
		}
		overflow := uint64(ne.Uint32(hdr[12:]))
		if id+overflow >= m.hwm {
			return nil, corrupt("page %d overflows past the high-water mark (%d more pages)", id, overflow)
		}
		p := make([]byte, int64(1+overflow)*pageSize)
		if _, err := f.ReadAt(p, int64(id)*pageSize); err != nil {
			return nil, readErr(id, err)
		}
		return p, nil
	}

	if m.freelist != noFreelist {
		p, err := readPage(m.freelist)
		if err != nil {
			return err
		}
		if ne.Uint16(p[8:])&freelistPageFlag == 0 {
			return corrupt("freelist page %d has flags %#x", m.freelist, ne.Uint16(p[8:]))
		}
		count, start := uint64(ne.Uint16(p[10:])), uint64(pageHeaderSize)
		if count == 0xFFFF {
			if len(p) < pageHeaderSize+8 {
				return corrupt("freelist page %d too short", m.freelist)
			}
			count, start = ne.Uint64(p[pageHeaderSize:]), pageHeaderSize+8
		}
		if count > (uint64(len(p))-start)/8 {
			return corrupt("freelist page %d claims %d ids", m.freelist, count)
		}
		for i := range count {
			if id := ne.Uint64(p[start+8*i:]); id < 2 || id >= m.hwm {
				return corrupt("freelist holds page id %d out of range", id)
			}
		}
	}

	seen := make(map[uint64]bool)
	stack := []uint64{m.root}
	// checkNode validates one branch or leaf page image (from the file, or
	// inline in a bucket value) and pushes the pages it references.
	var checkNode func(p []byte, where string, inline bool) error
	checkNode = func(p []byte, where string, inline bool) error {
		if len(p) < pageHeaderSize {
			return corrupt("%s: page shorter than its header", where)
		}
		flags, count := ne.Uint16(p[8:]), int(ne.Uint16(p[10:]))
		if pageHeaderSize+count*elementSize > len(p) {
			return corrupt("%s: %d elements do not fit in %d bytes", where, count, len(p))
		}
		isBranch := flags&branchPageFlag != 0
		if !isBranch && flags&leafPageFlag == 0 || inline && isBranch {
			return corrupt("%s: page flags %#x", where, flags)
		}
		for i := range count {
			at := pageHeaderSize + i*elementSize
			e := p[at : at+elementSize]
			if isBranch {
				pos, ksize := int64(ne.Uint32(e[0:])), int64(ne.Uint32(e[4:]))
				if int64(at)+pos+ksize > int64(len(p)) {
					return corrupt("%s: branch element %d out of bounds", where, i)
				}
				if !c.Spine || i == count-1 {
					stack = append(stack, ne.Uint64(e[8:]))
				}
				continue
			}
			eflags, pos := ne.Uint32(e[0:]), int64(ne.Uint32(e[4:]))
			ksize, vsize := int64(ne.Uint32(e[8:])), int64(ne.Uint32(e[12:]))
			end := int64(at) + pos + ksize + vsize
			if end > int64(len(p)) {
				return corrupt("%s: leaf element %d out of bounds", where, i)
			}
			if eflags&bucketLeafFlag == 0 {
				continue
			}
			v := p[end-vsize : end]
			if len(v) < 16 {
				return corrupt("%s: bucket value of %d bytes", where, len(v))
			}
			if root := ne.Uint64(v); root != 0 {
				stack = append(stack, root)
			} else if err := checkNode(v[16:], where+" inline bucket", true); err != nil {
				return err
			}
		}
		return nil
	}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[id] {
			return corrupt("page %d referenced twice (a cycle or shared page)", id)
		}
		seen[id] = true
		if len(seen) > int(m.hwm) {
			return corrupt("more reachable pages than the file holds")
		}
		p, err := readPage(id)
		if err != nil {
			return err
		}
		if err := checkNode(p, fmt.Sprintf("page %d", id), false); err != nil {
			return err
		}
	}
	return nil
}

// readErr classifies a failed page read: a short file is damage, anything
// else is the environment's.
func readErr(id uint64, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: page %d beyond the end of the file", errCorrupt, id)
	}
	return fmt.Errorf("read page %d: %w", id, err)
}
