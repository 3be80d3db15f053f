//go:build linux && (amd64 || arm64)

package cutfs

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
)

// sectorSize is what a torn page is torn at: flash and disks write sectors
// atomically, pages not.
const sectorSize = 512

// CutPlan says what of the unsynced state reaches the disk at a cut.
type CutPlan struct {
	// Seed makes the cut's choices reproducible.
	Seed uint64
	// Pages is the chance that one unsynced page (or a pending truncate)
	// reaches the disk: 0 is LazyFS (all unsynced data lost).
	Pages float64
	// Dirs is the chance that one directory's unsynced entries reach the disk,
	// all of them, as one block.
	Dirs float64
	// Torn, if set, tears one of the pages that reach the disk: only its
	// first 1 to 7 sectors are written, the page that was being written when
	// the power went.
	Torn bool
}

// CutReport says what a cut kept and dropped.
type CutReport struct {
	PagesKept, PagesDropped int
	DirsKept, DirsDropped   int
	Torn                    string // "file-id page sectors", or empty
	Fired                   bool   // an armed cut came at the write or sync it was armed for
}

// cutLocked stops the filesystem (every later operation fails), writes to the
// disk what the plan keeps of the unsynced state, and lays the backing
// directory out as the disk now holds it. Caller holds mu.
func (m *model) cutLocked(plan CutPlan) (CutReport, error) {
	m.cut = true
	rng := rand.New(rand.NewPCG(plan.Seed, plan.Seed^0x9e3779b97f4a7c15))
	var rep CutReport
	type pageRef struct {
		f *file
		i int64
	}
	var kept []pageRef
	for _, id := range slices.Sorted(maps.Keys(m.files)) {
		f := m.files[id]
		if f.low < f.dsize && rng.Float64() < plan.Pages {
			if err := f.store.Truncate(f.low); err != nil {
				return rep, err
			}
			f.dsize = f.low
		}
		for _, i := range slices.Sorted(maps.Keys(f.dirty)) {
			if rng.Float64() < plan.Pages {
				kept = append(kept, pageRef{f, i})
			} else {
				rep.PagesDropped++
			}
		}
	}
	torn := -1
	if plan.Torn && len(kept) > 0 {
		torn = rng.IntN(len(kept))
	}
	for k, r := range kept {
		p := r.f.dirty[r.i]
		n := min(PageSize, r.f.size-r.i*PageSize)
		if k == torn {
			sectors := 1 + rng.IntN(PageSize/sectorSize-1)
			n = min(n, int64(sectors*sectorSize))
			rep.Torn = fmt.Sprintf("file %d page %d: %d of %d sectors", r.f.id, r.i, sectors, PageSize/sectorSize)
		}
		if n <= 0 {
			continue
		}
		if _, err := r.f.store.WriteAt(p[:n], r.i*PageSize); err != nil {
			return rep, err
		}
		rep.PagesKept++
	}
	for _, id := range slices.Sorted(maps.Keys(m.dirs)) {
		d := m.dirs[id]
		if !d.dirty() {
			continue
		}
		if rng.Float64() < plan.Dirs {
			d.sync()
			rep.DirsKept++
		} else {
			rep.DirsDropped++
		}
	}
	return rep, m.layOut()
}

// syncAllLocked makes everything durable, as a clean shutdown does. Caller holds mu.
func (m *model) syncAllLocked() error {
	m.cut = true
	for _, f := range m.files {
		if err := f.sync(); err != nil {
			return err
		}
	}
	for _, d := range m.dirs {
		d.sync()
	}
	return m.layOut()
}

// layOut makes the backing directory hold the durable namespace: each durable
// name a hard link to its file's store, each durable directory a directory,
// nothing else. Files with no durable name are gone with the store directory.
func (m *model) layOut() error {
	ents, err := os.ReadDir(m.backing)
	if err != nil {
		return fmt.Errorf("lay out: %w", err)
	}
	for _, e := range ents {
		if e.Name() != storeDir {
			if err := os.RemoveAll(filepath.Join(m.backing, e.Name())); err != nil {
				return fmt.Errorf("lay out: %w", err)
			}
		}
	}
	placed := map[*dir]bool{}
	var place func(d *dir, path string) error
	place = func(d *dir, path string) error {
		if placed[d] { // a directory renamed while only one of its parents reached the disk
			return nil
		}
		placed[d] = true
		for _, name := range slices.Sorted(maps.Keys(d.durable)) {
			p := filepath.Join(path, name)
			switch n := d.durable[name].(type) {
			case *dir:
				if err := os.Mkdir(p, os.FileMode(n.mode|0o700)); err != nil {
					return err
				}
				if err := place(n, p); err != nil {
					return err
				}
			case *file:
				if err := os.Link(n.store.Name(), p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := place(m.root, m.backing); err != nil {
		return fmt.Errorf("lay out: %w", err)
	}
	for _, f := range m.files {
		f.store.Close()
	}
	if err := os.RemoveAll(filepath.Join(m.backing, storeDir)); err != nil {
		return fmt.Errorf("lay out: %w", err)
	}
	return nil
}
