//go:build linux && (amd64 || arm64)

// Package cutfs is a power-cut filesystem for tests: a FUSE filesystem over a
// backing directory (the "disk") that keeps in memory everything a power cut
// would lose, as Jepsen's LazyFS and SQLite's crash-test VFS do.
//
// What it holds in memory, and drops at a cut:
//   - a file's data written since its last fsync/fdatasync (reads see it, as
//     they would the page cache), in 4 KiB pages, and a pending truncate;
//   - a directory's entries created, renamed or unlinked since its last fsync:
//     a name is on the disk only once its directory was fsynced.
//
// A cut goes beyond LazyFS where SQLite's crash test goes, since real flash
// writes dirty pages back in any order: a seeded random subset of the
// unsynced pages (and of the unsynced directories, each as one block) still
// reaches the disk, and one page may be torn (only its first sectors written).
// The same seed gives the same cut.
//
// It must be served by a process of its own: a Go program that serves FUSE and
// faults on a FUSE-backed mmap in the same runtime can deadlock, and bbolt
// reads through mmap. cmd/cutfs is that process; package cutfstest starts it
// from a test and speaks its control socket. A cut ends the process and its
// mount, as a power cut ends the machine: the next mount over the same backing
// directory is the reboot.
//
// It is test-only: nothing the agent binary links may import it.
package cutfs
