package buffer

import (
	"os"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// releaseMinBytes is the smallest database worth releasing the mapped pages
// of: below it, the pages are too few to matter.
const releaseMinBytes = 4 << 20

// releaseMapped drops the pages of bbolt's memory map from this process's
// resident set (madvise MADV_DONTNEED). bbolt reads the file through a
// read-only shared mapping, and every page a read touches stays in the
// process's RSS as file RSS until the mapping goes: Open's consistency check
// reads the whole file and a drain reads all of it, so a buffer holding a
// week of fixes would show hundreds of MiB resident. The pages are clean
// copies of the file, so dropping them loses nothing: the next access maps
// them again from the page cache (or the disk, if the kernel evicted them).
//
// The mapping must not move while madvise runs: bbolt remaps only in Open,
// Close and write transactions, and the caller holds commitMu (or is Open,
// before the Buffer is shared), which excludes all three; dbMu keeps the
// compaction swap out. Errors are ignored: RSS is not correctness.
func (b *Buffer) releaseMapped() {
	b.dbMu.RLock()
	defer b.dbMu.RUnlock()
	if b.db == nil {
		return
	}
	var size int
	if err := b.db.View(func(tx *bolt.Tx) error { size = int(tx.Size()); return nil }); err != nil || size < releaseMinBytes {
		return
	}
	info := b.db.Info()
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, info.Data, uintptr(size), unix.MADV_DONTNEED)
}

// releaseMappedIfFree is releaseMapped when commitMu is free at once, and
// nothing otherwise: for the background check, which must never wait on a
// lock that Close may hold while it waits for the check.
func (b *Buffer) releaseMappedIfFree() {
	if !b.commitMu.TryLock() {
		return
	}
	defer b.commitMu.Unlock()
	b.releaseMapped()
}

// releaseMappedCommit is releaseMapped for callers not holding commitMu.
func (b *Buffer) releaseMappedCommit() {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.releaseMapped()
}

// dropCache unmaps the whole file from bbolt's mapping and drops the file's
// clean pages from the page cache (fadvise DONTNEED), so that every page is
// read again, one 4 KiB folio at a time, through bbolt's MADV_RANDOM
// mapping. Why: the kernel (ext4 with large folios, Linux 6.16 and later)
// caches a file in folios as large as the write or read-ahead that brought
// them in, and writing one bbolt page into a cached folio dirties, and
// writes back, the whole folio. bbolt creates its file with one 16 KiB write
// (both meta pages, the freelist and the root), so every commit's meta page
// cost 16 KiB, and Open's check reads the file with read-ahead, so a page
// reused after it cost a whole read-ahead folio. Called by Open and after a
// compaction's swap, with the mapping stable (see releaseMapped). Errors are
// ignored: the cost is flash wear, not correctness.
func (b *Buffer) dropCache() {
	b.dbMu.RLock()
	defer b.dbMu.RUnlock()
	if b.db == nil {
		return
	}
	var size int
	if err := b.db.View(func(tx *bolt.Tx) error { size = int(tx.Size()); return nil }); err != nil || size == 0 {
		return
	}
	info := b.db.Info()
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, info.Data, uintptr(size), unix.MADV_DONTNEED)
	f, err := os.Open(b.path)
	if err != nil {
		return
	}
	defer f.Close()
	// bbolt fsyncs every commit and Open's writes, so these pages are clean;
	// DONTNEED skips any that are not.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
