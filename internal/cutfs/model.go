//go:build linux && (amd64 || arm64)

package cutfs

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// PageSize is the unit the model tracks unsynced data in, and the unit a cut
// keeps or drops: the kernel's page.
const PageSize = 4096

// storeDir is where each file's durable bytes live while mounted, one file per
// inode, named by inode number and hard-linked to the file's durable names.
// It sits in the backing directory and is hidden from the mount.
const storeDir = ".cutfs"

// node is a file or a directory of the model.
type node interface{ ino() uint64 }

// file is a regular file: durable bytes in its store file, and the pages
// written since the last sync in memory.
type file struct {
	id    uint64
	store *os.File // the durable bytes (the disk)
	mode  uint32
	mtime time.Time

	size  int64 // the size reads see
	dsize int64 // the store's size: the durable size
	// low is the smallest size since the last sync: store bytes at or past
	// it were truncated away and read as zeros unless rewritten.
	low   int64
	dirty map[int64][]byte // page index -> the page as reads see it
}

func (f *file) ino() uint64 { return f.id }

// dir is a directory: the entries reads see, and those on the disk.
type dir struct {
	id      uint64
	mode    uint32
	mtime   time.Time
	live    map[string]node
	durable map[string]node
}

func (d *dir) ino() uint64 { return d.id }

// model is the filesystem's state. One lock guards it all: the filesystem
// serves tests, not throughput.
type model struct {
	mu      sync.Mutex
	backing string
	nextID  uint64
	root    *dir
	files   map[uint64]*file
	dirs    map[uint64]*dir
	cut     bool // a cut has begun: every operation fails
	st      Stats

	// armed, if not nil, cuts at the armedIn-th write or sync from when it
	// was armed, inside that operation: a cut that lands in the middle of
	// whatever the program was writing, as SQLite's crash test does.
	armed   *CutPlan
	armedIn int
	fired   chan armedCut
}

type armedCut struct {
	rep CutReport
	err error
}

// tick counts one write or sync towards an armed cut, and cuts when it is
// due. Caller holds mu; the operation that ticked must then fail.
func (m *model) tick() bool {
	if m.armed == nil {
		return false
	}
	if m.armedIn--; m.armedIn > 0 {
		return false
	}
	rep, err := m.cutLocked(*m.armed)
	m.armed = nil
	m.fired <- armedCut{rep, err}
	return true
}

// Stats counts what the filesystem did since it was mounted.
type Stats struct {
	Writes, Reads, FileSyncs, DirSyncs uint64
	BytesWritten, BytesRead            int64
	DirtyPages                         int // unsynced pages held now
	DirtyDirs                          int // directories whose entries differ from the disk's now
}

// load builds the model from the backing directory: everything in it is
// durable. It links each file into the store directory.
func load(backing string) (*model, error) {
	m := &model{backing: backing, files: map[uint64]*file{}, dirs: map[uint64]*dir{}}
	store := filepath.Join(backing, storeDir)
	if err := os.RemoveAll(store); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := os.Mkdir(store, 0o700); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	byIno := map[uint64]*file{}
	var walk func(path string) (*dir, error)
	walk = func(path string) (*dir, error) {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		d := m.newDir(uint32(fi.Mode().Perm()))
		ents, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			p := filepath.Join(path, e.Name())
			if path == backing && e.Name() == storeDir {
				continue
			}
			switch {
			case e.IsDir():
				c, err := walk(p)
				if err != nil {
					return nil, err
				}
				d.live[e.Name()] = c
			case e.Type().IsRegular():
				var st syscall.Stat_t
				if err := syscall.Stat(p, &st); err != nil {
					return nil, fmt.Errorf("load %s: %w", p, err)
				}
				f := byIno[st.Ino]
				if f == nil {
					if f, err = m.newFile(uint32(st.Mode&0o7777), p); err != nil {
						return nil, err
					}
					byIno[st.Ino] = f
				}
				d.live[e.Name()] = f
			default:
				return nil, fmt.Errorf("load %s: only files and directories are supported", p)
			}
		}
		d.durable = maps.Clone(d.live)
		return d, nil
	}
	root, err := walk(backing)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	m.root = root
	return m, nil
}

func (m *model) newDir(mode uint32) *dir {
	m.nextID++
	d := &dir{id: m.nextID, mode: mode, mtime: time.Now(), live: map[string]node{}, durable: map[string]node{}}
	m.dirs[d.id] = d
	return d
}

// newFile makes a file whose store is a new empty file, or a link to from.
func (m *model) newFile(mode uint32, from string) (*file, error) {
	m.nextID++
	f := &file{id: m.nextID, mode: mode, mtime: time.Now()}
	path := filepath.Join(m.backing, storeDir, fmt.Sprint(f.id))
	if from != "" {
		if err := os.Link(from, path); err != nil {
			return nil, err
		}
	}
	s, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := s.Stat()
	if err != nil {
		s.Close()
		return nil, err
	}
	f.store, f.size, f.dsize, f.low = s, fi.Size(), fi.Size(), fi.Size()
	m.files[f.id] = f
	return f, nil
}

// page returns page i as reads see it now, without copying a dirty page.
func (f *file) page(i int64) ([]byte, error) {
	if p := f.dirty[i]; p != nil {
		return p, nil
	}
	p := make([]byte, PageSize)
	n := min(PageSize, max(0, f.low-i*PageSize))
	if n > 0 {
		if _, err := f.store.ReadAt(p[:n], i*PageSize); err != nil && err != io.EOF {
			return nil, err
		}
	}
	return p, nil
}

// read copies what reads see at off into dest, up to the size.
func (f *file) read(dest []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, nil
	}
	n := int(min(int64(len(dest)), f.size-off))
	for done := 0; done < n; {
		at := off + int64(done)
		p, err := f.page(at / PageSize)
		if err != nil {
			return done, err
		}
		done += copy(dest[done:n], p[at%PageSize:])
	}
	return n, nil
}

// write puts data at off in memory: nothing reaches the store until a sync.
func (f *file) write(data []byte, off int64) error {
	if f.dirty == nil {
		f.dirty = map[int64][]byte{}
	}
	for done := 0; done < len(data); {
		at := off + int64(done)
		i := at / PageSize
		p, err := f.page(i)
		if err != nil {
			return err
		}
		f.dirty[i] = p
		done += copy(p[at%PageSize:], data[done:])
	}
	f.size = max(f.size, off+int64(len(data)))
	f.mtime = time.Now()
	return nil
}

// truncate sets the size in memory; bytes past it read as zeros if the file
// grows again.
func (f *file) truncate(size int64) error {
	if size < f.size {
		if r := size % PageSize; r != 0 {
			p, err := f.page(size / PageSize)
			if err != nil {
				return err
			}
			if f.dirty == nil {
				f.dirty = map[int64][]byte{}
			}
			clear(p[r:])
			f.dirty[size/PageSize] = p
		}
		for i := range f.dirty {
			if i*PageSize >= size {
				delete(f.dirty, i)
			}
		}
		f.low = min(f.low, size)
	}
	f.size = size
	f.mtime = time.Now()
	return nil
}

// sync makes the file's data durable: what fsync and fdatasync do.
func (f *file) sync() error {
	if err := f.store.Truncate(f.low); err != nil {
		return err
	}
	for _, i := range slices.Sorted(maps.Keys(f.dirty)) {
		p := f.dirty[i]
		n := min(PageSize, f.size-i*PageSize)
		if _, err := f.store.WriteAt(p[:n], i*PageSize); err != nil {
			return err
		}
	}
	if err := f.store.Truncate(f.size); err != nil {
		return err
	}
	f.dirty, f.dsize, f.low = nil, f.size, f.size
	return nil
}

// syncDir makes the directory's entries durable: what fsync of it does.
func (d *dir) sync() { d.durable = maps.Clone(d.live) }

func (d *dir) dirty() bool { return !maps.Equal(d.live, d.durable) }

// stats returns the counters, with the dirty state counted now.
func (m *model) stats() Stats {
	s := m.st
	for _, f := range m.files {
		s.DirtyPages += len(f.dirty)
	}
	for _, d := range m.dirs {
		if d.dirty() {
			s.DirtyDirs++
		}
	}
	return s
}
