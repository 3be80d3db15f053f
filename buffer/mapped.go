package buffer

import (
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

// releaseMappedCommit is releaseMapped for callers not holding commitMu.
func (b *Buffer) releaseMappedCommit() {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.releaseMapped()
}
