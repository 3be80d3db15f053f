//go:build linux && (amd64 || arm64)

package cutfs

import (
	"context"
	"maps"
	"slices"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// fsNode is the FUSE side of one model node. The kernel may cache nothing
// but file pages (attribute and entry timeouts are zero), and those it keeps
// coherent itself: every write and truncate goes through this mount.
type fsNode struct {
	fs.Inode
	s  *server
	id uint64
}

var (
	_ fs.NodeLookuper  = (*fsNode)(nil)
	_ fs.NodeGetattrer = (*fsNode)(nil)
	_ fs.NodeSetattrer = (*fsNode)(nil)
	_ fs.NodeCreater   = (*fsNode)(nil)
	_ fs.NodeMkdirer   = (*fsNode)(nil)
	_ fs.NodeUnlinker  = (*fsNode)(nil)
	_ fs.NodeRmdirer   = (*fsNode)(nil)
	_ fs.NodeRenamer   = (*fsNode)(nil)
	_ fs.NodeReaddirer = (*fsNode)(nil)
	_ fs.NodeOpener    = (*fsNode)(nil)
	_ fs.NodeReader    = (*fsNode)(nil)
	_ fs.NodeWriter    = (*fsNode)(nil)
	_ fs.NodeFsyncer   = (*fsNode)(nil)
	_ fs.NodeFlusher   = (*fsNode)(nil)
	_ fs.NodeStatfser  = (*fsNode)(nil)
)

// lock takes the model's lock, or fails once a cut has begun.
func (n *fsNode) lock() (*model, syscall.Errno) {
	m := n.s.m
	m.mu.Lock()
	if m.cut {
		m.mu.Unlock()
		return nil, syscall.EIO
	}
	return m, 0
}

// lockDir takes the model's lock and finds this node's directory; on success the caller unlocks m.mu.
func (n *fsNode) lockDir() (*model, *dir, syscall.Errno) {
	m, e := n.lock()
	if e != 0 {
		return nil, nil, e
	}
	d, e := n.dir(m)
	if e != 0 {
		m.mu.Unlock()
		return nil, nil, e
	}
	return m, d, 0
}

// lockFile takes the model's lock and finds this node's file; on success the caller unlocks m.mu.
func (n *fsNode) lockFile() (*model, *file, syscall.Errno) {
	m, e := n.lock()
	if e != 0 {
		return nil, nil, e
	}
	f, e := n.file(m)
	if e != 0 {
		m.mu.Unlock()
		return nil, nil, e
	}
	return m, f, 0
}

// child returns the FUSE inode for model node c, creating it on first use.
func (n *fsNode) child(ctx context.Context, c node, out *fuse.EntryOut) *fs.Inode {
	fillAttr(c, &out.Attr)
	mode := uint32(fuse.S_IFREG)
	if _, ok := c.(*dir); ok {
		mode = fuse.S_IFDIR
	}
	return n.NewInode(ctx, &fsNode{s: n.s, id: c.ino()}, fs.StableAttr{Mode: mode, Ino: c.ino()})
}

func fillAttr(c node, a *fuse.Attr) {
	a.Ino = c.ino()
	a.Blksize = PageSize
	switch c := c.(type) {
	case *file:
		a.Mode = fuse.S_IFREG | c.mode
		a.Size = uint64(c.size)
		a.Blocks = uint64(c.size+511) / 512
		a.Nlink = 1
		a.SetTimes(nil, &c.mtime, &c.mtime)
	case *dir:
		a.Mode = fuse.S_IFDIR | c.mode
		a.Size = PageSize
		a.Nlink = 2
		a.SetTimes(nil, &c.mtime, &c.mtime)
	}
}

func (n *fsNode) dir(m *model) (*dir, syscall.Errno) {
	if d := m.dirs[n.id]; d != nil {
		return d, 0
	}
	return nil, syscall.ENOTDIR
}

func (n *fsNode) file(m *model) (*file, syscall.Errno) {
	if f := m.files[n.id]; f != nil {
		return f, 0
	}
	return nil, syscall.EISDIR
}

func (n *fsNode) self(m *model) node {
	if d := m.dirs[n.id]; d != nil {
		return d
	}
	return m.files[n.id]
}

func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return fs.ToErrno(err)
}

func (n *fsNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	m, d, e := n.lockDir()
	if e != 0 {
		return nil, e
	}
	defer m.mu.Unlock()
	if n.id == m.root.id && name == storeDir {
		return nil, syscall.ENOENT
	}
	c := d.live[name]
	if c == nil {
		return nil, syscall.ENOENT
	}
	return n.child(ctx, c, out), 0
}

func (n *fsNode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	m, e := n.lock()
	if e != 0 {
		return e
	}
	defer m.mu.Unlock()
	fillAttr(n.self(m), &out.Attr)
	return 0
}

func (n *fsNode) Setattr(ctx context.Context, _ fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	m, e := n.lock()
	if e != 0 {
		return e
	}
	defer m.mu.Unlock()
	if sz, ok := in.GetSize(); ok {
		f, e := n.file(m)
		if e != 0 {
			return e
		}
		if err := f.truncate(int64(sz)); err != nil {
			return errno(err)
		}
	}
	if mode, ok := in.GetMode(); ok {
		switch c := n.self(m).(type) {
		case *file:
			c.mode = mode & 0o7777
		case *dir:
			c.mode = mode & 0o7777
		}
	}
	fillAttr(n.self(m), &out.Attr)
	return 0
}

func (n *fsNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	m, d, e := n.lockDir()
	if e != 0 {
		return nil, nil, 0, e
	}
	defer m.mu.Unlock()
	if c := d.live[name]; c != nil {
		f, ok := c.(*file)
		switch {
		case flags&syscall.O_EXCL != 0:
			return nil, nil, 0, syscall.EEXIST
		case !ok:
			return nil, nil, 0, syscall.EISDIR
		case flags&syscall.O_TRUNC != 0:
			if err := f.truncate(0); err != nil {
				return nil, nil, 0, errno(err)
			}
		}
		return n.child(ctx, f, out), nil, 0, 0
	}
	f, err := m.newFile(mode&0o7777, "")
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	d.live[name] = f
	d.mtime = f.mtime
	return n.child(ctx, f, out), nil, 0, 0
}

func (n *fsNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	m, d, e := n.lockDir()
	if e != 0 {
		return nil, e
	}
	defer m.mu.Unlock()
	if d.live[name] != nil {
		return nil, syscall.EEXIST
	}
	c := m.newDir(mode & 0o7777)
	d.live[name] = c
	d.mtime = c.mtime
	return n.child(ctx, c, out), 0
}

func (n *fsNode) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.remove(name, false)
}

func (n *fsNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.remove(name, true)
}

func (n *fsNode) remove(name string, isDir bool) syscall.Errno {
	m, d, e := n.lockDir()
	if e != 0 {
		return e
	}
	defer m.mu.Unlock()
	c := d.live[name]
	if c == nil {
		return syscall.ENOENT
	}
	cd, ok := c.(*dir)
	switch {
	case isDir && !ok:
		return syscall.ENOTDIR
	case !isDir && ok:
		return syscall.EISDIR
	case ok && len(cd.live) > 0:
		return syscall.ENOTEMPTY
	}
	delete(d.live, name)
	return 0
}

func (n *fsNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	m, src, e := n.lockDir()
	if e != 0 {
		return e
	}
	defer m.mu.Unlock()
	dst, e := newParent.(*fsNode).dir(m)
	if e != 0 {
		return e
	}
	c := src.live[name]
	if c == nil {
		return syscall.ENOENT
	}
	old := dst.live[newName]
	switch {
	case flags&unix.RENAME_EXCHANGE != 0:
		if old == nil {
			return syscall.ENOENT
		}
		src.live[name], dst.live[newName] = old, c
		return 0
	case flags&unix.RENAME_NOREPLACE != 0 && old != nil:
		return syscall.EEXIST
	}
	if od, ok := old.(*dir); ok && len(od.live) > 0 {
		return syscall.ENOTEMPTY
	}
	delete(src.live, name)
	dst.live[newName] = c
	return 0
}

func (n *fsNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	m, d, e := n.lockDir()
	if e != 0 {
		return nil, e
	}
	defer m.mu.Unlock()
	var list []fuse.DirEntry
	for _, name := range slices.Sorted(maps.Keys(d.live)) {
		if n.id == m.root.id && name == storeDir {
			continue
		}
		c := d.live[name]
		var a fuse.Attr
		fillAttr(c, &a)
		list = append(list, fuse.DirEntry{Name: name, Mode: a.Mode, Ino: c.ino()})
	}
	return fs.NewListDirStream(list), 0
}

// Open keeps the page cache (no direct I/O, so bbolt's mmap works) but asks
// the kernel to drop what it cached of the file at each open.
func (n *fsNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	m, f, e := n.lockFile()
	if e != 0 {
		return nil, 0, e
	}
	defer m.mu.Unlock()
	if flags&syscall.O_TRUNC != 0 {
		if err := f.truncate(0); err != nil {
			return nil, 0, errno(err)
		}
	}
	return nil, 0, 0
}

func (n *fsNode) Read(ctx context.Context, _ fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	m, f, e := n.lockFile()
	if e != 0 {
		return nil, e
	}
	got, err := f.read(dest, off)
	m.st.Reads++
	m.st.BytesRead += int64(got)
	m.mu.Unlock()
	if err != nil {
		return nil, errno(err)
	}
	if err := n.s.throttle.wait(ctx, got); err != nil {
		return nil, syscall.EINTR
	}
	return fuse.ReadResultData(dest[:got]), 0
}

func (n *fsNode) Write(ctx context.Context, _ fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	m, f, e := n.lockFile()
	if e != 0 {
		return 0, e
	}
	defer m.mu.Unlock()
	if err := f.write(data, off); err != nil {
		return 0, errno(err)
	}
	if m.tick() { // the write is in the page cache when the power goes
		return 0, syscall.EIO
	}
	m.st.Writes++
	m.st.BytesWritten += int64(len(data))
	return uint32(len(data)), 0
}

// Fsync makes a file's data, or a directory's entries, durable. fdatasync
// comes here too: the model keeps no metadata apart from the data.
func (n *fsNode) Fsync(ctx context.Context, _ fs.FileHandle, flags uint32) syscall.Errno {
	m, e := n.lock()
	if e != 0 {
		return e
	}
	defer m.mu.Unlock()
	if m.tick() { // the power goes before the sync
		return syscall.EIO
	}
	switch c := n.self(m).(type) {
	case *file:
		m.st.FileSyncs++
		return errno(c.sync())
	case *dir:
		m.st.DirSyncs++
		c.sync()
	}
	return 0
}

func (n *fsNode) Flush(ctx context.Context, _ fs.FileHandle) syscall.Errno { return 0 }

func (n *fsNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.s.m.backing, &st); err != nil {
		return errno(err)
	}
	out.FromStatfsT(&st)
	return 0
}
