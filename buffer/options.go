package buffer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Options configures a Buffer. Start from DefaultOptions; zero fields are
// replaced by their defaults in Open.
type Options struct {
	// CommitInterval is each record's commit deadline: a record not acked
	// within it of its Append is written, in one fsynced transaction with
	// every other unacked record in memory, and a record acked within it is
	// never written (unless another fell due meanwhile). It is the loss window
	// on power loss or kill -9 (plus the fsync's own time). Default 1s: one
	// fix at 1 Hz at risk, one flash write burst per second while the uplink
	// is down, and none while it acks each fix within a second, as a cellular
	// link with round trips of 50-500 ms does.
	CommitInterval time.Duration

	// MaxBytes bounds the bytes of pending record data (len(Data), summed).
	// When over, the oldest records are dropped at the next commit, the
	// rest of a commit's group with them if it is at most MaxBytes/64 (a
	// group cut in two would be rewritten at every commit). Default:
	// one week of 1 Hz fixes of ~250 B = 151,200,000 B. bbolt needs more than
	// this on disk (page overhead, free pages, and a second file while
	// compacting): plan for about 3x MaxBytes of free space.
	MaxBytes int64

	// MaxAge drops records whose time (the one given to Append) is more than
	// this before the time of the last record appended. Default 7 days: older
	// positions are of no use to dispatch and would only delay live ones.
	// Only the caller's times count, never the gateway's clock, so a clock
	// step (a gateway without a real-time clock set by NTP after days
	// offline) drops nothing. Records timed before 2025 are spared: their age
	// is unknown.
	MaxAge time.Duration

	// SeqBlock is how many sequence numbers are reserved per durable write of
	// the high-water mark. A larger block means fewer writes and a larger gap
	// after a crash. The next block is reserved when half of the current one
	// is used, so Append never waits for it. Default 65536: one write (about
	// 40 KiB with the sidecar, on ext4) every 32768 fixes, ~9 hours at 1 Hz,
	// about 1.25 B per fix: with a healthy uplink these are the only writes,
	// so they must stay well under 1% of the data (make bench measures it).
	// The cost is a gap of at most 65536 numbers after a crash: numbers, not
	// fixes, and logged (see FORMAT.md).
	SeqBlock uint64

	// Log receives the buffer's logs. Default slog.Default().
	Log *slog.Logger

	// Now is the gateway's clock, used only to pace logs and compactions and
	// to name a file moved aside; never to age records. Default time.Now.
	Now func() time.Time

	// Tests only. bgCheckFrom is the smallest file Open checks in the
	// background (0: defaultBgCheckFrom); checkPage is called before each
	// page the background check reads, and stops it by returning an error;
	// checkTick is called each time the check's walk is about to drop the
	// pages it has mapped.
	bgCheckFrom int64
	checkPage   func() error
	checkTick   func()
}

// defaultBgCheckFrom is the smallest file whose full check Open leaves to
// the background: 8 MiB take 0.4 s at gateway flash's 20 MB/s; a full
// default buffer (about 200 MiB) would take 10 s before the first live fix.
const defaultBgCheckFrom = 8 << 20

// Defaults, each with its reason in the Options field docs.
const (
	DefaultCommitInterval = time.Second
	DefaultMaxBytes       = int64(7 * 24 * 3600 * 250)
	DefaultMaxAge         = 7 * 24 * time.Hour
	DefaultSeqBlock       = 65536
)

// DefaultOptions returns the options used for a gateway in the field.
func DefaultOptions() Options {
	return Options{
		CommitInterval: DefaultCommitInterval,
		MaxBytes:       DefaultMaxBytes,
		MaxAge:         DefaultMaxAge,
		SeqBlock:       DefaultSeqBlock,
		Log:            slog.Default(),
		Now:            time.Now,
	}
}

// withDefaults fills zero fields.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.CommitInterval == 0 {
		o.CommitInterval = d.CommitInterval
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = d.MaxBytes
	}
	if o.MaxAge == 0 {
		o.MaxAge = d.MaxAge
	}
	if o.SeqBlock == 0 {
		o.SeqBlock = d.SeqBlock
	}
	if o.Log == nil {
		o.Log = d.Log
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	if o.bgCheckFrom == 0 {
		o.bgCheckFrom = defaultBgCheckFrom
	}
	return o
}

// Validate reports options that cannot work. Zero values are valid: they
// mean "default".
func (o Options) Validate() error {
	var errs []error
	if o.CommitInterval < 0 {
		errs = append(errs, fmt.Errorf("buffer options: CommitInterval %v is negative", o.CommitInterval))
	}
	if o.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("buffer options: MaxBytes %d is negative", o.MaxBytes))
	}
	if o.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("buffer options: MaxAge %v is negative", o.MaxAge))
	}
	if o.SeqBlock > 1<<40 {
		errs = append(errs, fmt.Errorf("buffer options: SeqBlock %d is absurdly large", o.SeqBlock))
	}
	return errors.Join(errs...)
}
