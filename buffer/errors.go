package buffer

import "errors"

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
	// made durable (the reserved block is used up and reserving the next one
	// failed, typically because the disk is full). Handing out an unreserved
	// number could repeat it after a crash, so Append refuses instead.
	ErrSeqUnavailable = errors.New("no durable sequence number available")

	// errCorrupt marks a database file that must be moved aside.
	errCorrupt = errors.New("corrupt database")
)
