package buffer

import "errors"

// The package's sentinel errors, all of them: methods return them wrapped
// ("append: ...: %w"), so test with errors.Is.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("buffer closed")

	// ErrReadOnly is returned by the methods that write when the Buffer was
	// opened with OpenReadOnly.
	ErrReadOnly = errors.New("buffer opened read-only")

	// ErrRunning is returned by Run when another Run is already active on the
	// same Buffer: two commit loops would only contend for the same lock.
	ErrRunning = errors.New("buffer commit loop already running")

	// ErrSeqUnavailable is returned by Append when no sequence number can be
	// made durable: the reserved block is used up and reserving the next one
	// failed (typically the disk is full, in the database or the sidecar), or
	// the seq range itself is used up (a number beyond 2^63-1). Handing out an
	// unreserved number could repeat it after a crash or a lost database, so
	// Append refuses instead.
	ErrSeqUnavailable = errors.New("no durable sequence number available")

	// errCorrupt marks a database file that must be moved aside. Open acts on
	// it; OpenReadOnly returns it wrapped, for its text only.
	errCorrupt = errors.New("corrupt database")
)
