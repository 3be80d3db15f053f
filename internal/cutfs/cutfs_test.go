//go:build linux && (amd64 || arm64)

package cutfs_test

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/internal/cutfs"
	"github.com/fleetedge/gps-agent/internal/cutfs/cutfstest"
)

// lazyFS is LazyFS's cut: every unsynced page and directory entry is lost.
var lazyFS = cutfs.CutPlan{Seed: 1}

func write(t *testing.T, path string, data []byte, syncFile bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if syncFile {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Unsynced data is read back while mounted, as from the page cache, and gone after a cut; synced data stays.
func TestCutDropsUnsyncedData(t *testing.T) {
	fsys := cutfstest.New(t)
	p := filepath.Join(fsys.Dir, "f")
	synced := bytes.Repeat([]byte("s"), 10000)
	write(t, p, synced, true)
	syncDir(t, fsys.Dir)

	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte("u"), 9000), 5000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := read(t, p); len(got) != 14000 || got[13999] != 'u' || got[4999] != 's' {
		t.Fatalf("before the cut, reads do not see the unsynced write: %d bytes", len(got))
	}
	if st := fsys.Stats(); st.DirtyPages != 3 {
		t.Errorf("dirty pages = %d, want 3 (bytes 5000..13999)", st.DirtyPages)
	}
	rep := fsys.Cut(lazyFS)
	if rep.PagesKept != 0 || rep.PagesDropped != 3 {
		t.Errorf("cut report %+v, want 3 pages dropped", rep)
	}
	fsys.Mount()
	if got := read(t, p); !bytes.Equal(got, synced) {
		t.Fatalf("after the cut the file has %d bytes (%q...), want the synced 10000 's'", len(got), got[:min(len(got), 20)])
	}
}

// Names count only once their directory is synced: a create, a rename and an unlink without it are undone.
func TestCutUndoesUnsyncedNames(t *testing.T) {
	fsys := cutfstest.New(t)
	dir := fsys.Dir
	write(t, filepath.Join(dir, "a"), []byte("old"), true)
	write(t, filepath.Join(dir, "gone"), []byte("x"), true)
	syncDir(t, dir)

	// The sidecar's pattern without its last step: new content synced, renamed over, directory not synced.
	write(t, filepath.Join(dir, "a.tmp"), []byte("new"), true)
	if err := os.Rename(filepath.Join(dir, "a.tmp"), filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "created"), []byte("c"), true)
	if err := os.Remove(filepath.Join(dir, "gone")); err != nil {
		t.Fatal(err)
	}
	if got := string(read(t, filepath.Join(dir, "a"))); got != "new" {
		t.Fatalf("before the cut a = %q, want new", got)
	}
	fsys.Cut(lazyFS)
	fsys.Mount()
	if got := string(read(t, filepath.Join(dir, "a"))); got != "old" {
		t.Errorf("after the cut a = %q, want old: the rename was not durable", got)
	}
	for name, want := range map[string]bool{"a.tmp": false, "created": false, "gone": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("after the cut %s exists = %v, want %v", name, err == nil, want)
		}
	}

	// The same with the directory synced: all of it is durable.
	write(t, filepath.Join(dir, "a.tmp"), []byte("new"), true)
	if err := os.Rename(filepath.Join(dir, "a.tmp"), filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "sub", "f"), []byte("in sub"), true)
	syncDir(t, filepath.Join(dir, "sub"))
	syncDir(t, dir)
	fsys.Cut(lazyFS)
	fsys.Mount()
	if got := string(read(t, filepath.Join(dir, "a"))); got != "new" {
		t.Errorf("after a synced rename and a cut a = %q, want new", got)
	}
	if got := string(read(t, filepath.Join(dir, "sub", "f"))); got != "in sub" {
		t.Errorf("sub/f = %q", got)
	}
}

// A cut keeps a seeded subset of the unsynced pages, and may tear one: each page reads as before or as written,
// except the torn one (its first sectors new, the rest old); the same seed cuts the same way.
func TestCutKeepsSeededSubsetOfPages(t *testing.T) {
	const pages = 64
	old := bytes.Repeat([]byte{'o'}, pages*cutfs.PageSize)
	fresh := bytes.Repeat([]byte{'n'}, pages*cutfs.PageSize)
	plan := cutfs.CutPlan{Seed: 42, Pages: 0.5, Torn: true}
	var results [2][]byte
	var reports [2]cutfs.CutReport
	for run := range results {
		fsys := cutfstest.New(t)
		p := filepath.Join(fsys.Dir, "f")
		write(t, p, old, true)
		syncDir(t, fsys.Dir)
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(fresh, 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		reports[run] = fsys.Cut(plan)
		fsys.Mount()
		results[run] = read(t, p)
		fsys.Stop()
	}
	if !bytes.Equal(results[0], results[1]) || reports[0] != reports[1] {
		t.Fatalf("the same seed cut differently: %+v vs %+v", reports[0], reports[1])
	}
	got, rep := results[0], reports[0]
	t.Logf("cut: %+v", rep)
	if rep.PagesKept < 10 || rep.PagesKept > pages-10 || rep.Torn == "" {
		t.Fatalf("cut kept %d of %d pages (torn %q): not a subset with a torn page", rep.PagesKept, pages, rep.Torn)
	}
	var kept, torn int
	for i := range pages {
		pg := got[i*cutfs.PageSize : (i+1)*cutfs.PageSize]
		n := bytes.IndexByte(pg, 'o')
		switch {
		case n == -1:
			kept++
		case n == 0:
			if bytes.IndexByte(pg, 'n') != -1 {
				t.Errorf("page %d mixes old and new out of order", i)
			}
		default:
			torn++
			if n%512 != 0 || bytes.IndexByte(pg[n:], 'n') != -1 {
				t.Errorf("page %d torn at byte %d, not at a sector boundary with old data after", i, n)
			}
		}
	}
	if kept+torn != rep.PagesKept || torn != 1 {
		t.Errorf("found %d new and %d torn pages, report says %d kept (one torn)", kept, torn, rep.PagesKept)
	}
}

// bbolt reads through a read-only shared mmap: the mapping sees data written with pwrite after it was made, and
// a file grown by ftruncate.
func TestMmapSeesWrites(t *testing.T) {
	fsys := cutfstest.New(t)
	f, err := os.OpenFile(filepath.Join(fsys.Dir, "db"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(4 * cutfs.PageSize); err != nil {
		t.Fatal(err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, 8*cutfs.PageSize, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	if m[100] != 0 {
		t.Fatalf("new file maps %q at 100", m[100])
	}
	if _, err := f.WriteAt([]byte("hello"), 100); err != nil {
		t.Fatal(err)
	}
	if string(m[100:105]) != "hello" {
		t.Fatalf("mapping sees %q after pwrite", m[100:105])
	}
	if err := f.Truncate(8 * cutfs.PageSize); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("grown"), 6*cutfs.PageSize); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if string(m[6*cutfs.PageSize:6*cutfs.PageSize+5]) != "grown" {
		t.Fatalf("mapping sees %q past the old end", m[6*cutfs.PageSize:6*cutfs.PageSize+5])
	}
}

// Reads, page faults included, are throttled to the rate set, as on gateway flash.
func TestReadRate(t *testing.T) {
	fsys := cutfstest.New(t)
	p := filepath.Join(fsys.Dir, "f")
	const size = 4 << 20
	write(t, p, bytes.Repeat([]byte("r"), size), true)
	fsys.SetReadRate(8 << 20)
	start := time.Now()
	if got := read(t, p); len(got) != size { // a fresh open: the kernel drops its cached pages
		t.Fatalf("read %d bytes", len(got))
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("4 MiB at 8 MiB/s read in %v, want about 500 ms", d)
	}
	if st := fsys.Stats(); st.BytesRead < size {
		t.Errorf("the filesystem served %d bytes of reads, want at least %d", st.BytesRead, size)
	}
}

// An armed cut fires inside the N-th write or sync from when it was armed: that operation fails, as does every
// later one, and a sync that came after it never reaches the disk.
func TestCutAtWrite(t *testing.T) {
	fsys := cutfstest.New(t)
	p := filepath.Join(fsys.Dir, "f")
	write(t, p, []byte("synced"), true)
	syncDir(t, fsys.Dir)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep := make(chan cutfs.CutReport, 1)
	go func() { rep <- fsys.CutAt(2, lazyFS) }()
	// The arming and the first write race; a write that fails means the cut fired.
	var errs []error
	for i := range 200 {
		_, err := f.WriteAt([]byte("unsynced"), int64(i))
		if err != nil {
			errs = append(errs, err)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := <-rep
	if !r.Fired || len(errs) == 0 {
		t.Fatalf("armed cut: fired %v, write errors %v", r.Fired, errs)
	}
	if err := f.Sync(); err == nil {
		t.Error("a sync after the cut succeeded")
	}
	fsys.Mount()
	if got := string(read(t, p)); got != "synced" {
		t.Errorf("after the armed cut the file holds %q, want synced", got)
	}
}
