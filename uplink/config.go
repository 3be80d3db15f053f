package uplink

import (
	"fmt"
	"log/slog"
	"time"
)

// Kinesis PutRecords limits
// (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html).
const (
	// MaxRecordsPerCall: "Each PutRecords request can support up to 500 records."
	MaxRecordsPerCall = 500
	// MaxRecordBytes: "Each record in the request can be as large as 1 MiB",
	// counting the data blob and the partition key.
	MaxRecordBytes = 1 << 20
	// MaxCallBytes: "up to a limit of 5 MiB for the entire request,
	// including partition keys."
	MaxCallBytes = 5 << 20
)

// Defaults.
const (
	// DefaultMaxBackoff caps retry waits after server errors, and is the
	// wait after a permanent error: long enough not to hammer a stream
	// that is gone. A down link is probed at most once a second on new
	// records instead (retryWait), and throttling is retried within a
	// second, so neither waits for it.
	DefaultMaxBackoff = 30 * time.Second
	// baseBackoff is the first retry's ceiling; one fix interval is 1 s, so
	// a quick retry of a transient 5xx costs almost no freshness.
	baseBackoff = 100 * time.Millisecond
	// DefaultBackfillShare leaves half of a shard's 1,000 records/s and
	// 1 MiB/s to the other trucks on it.
	DefaultBackfillShare = 0.5
	// DefaultBackfillDelay spreads a fleet's backfill over half a minute:
	// a thousand trucks then average ~33 starts a second instead of 1,000
	// at once.
	DefaultBackfillDelay = 30 * time.Second
	// DefaultStopTimeout lets one call finish on stop; well inside
	// systemd's default 90 s stop timeout.
	DefaultStopTimeout = 5 * time.Second
	// MaxCallTime is the longest one PutRecords call may take before the
	// uplink abandons it: a client from NewClient spends at most a minute
	// refreshing credentials (IoT, STS) and a minute on the HTTP exchange.
	// A watchdog adds it to Stats.NextAttempt.
	MaxCallTime = 2 * time.Minute
)

// Config configures an Uplink. The zero value of optional fields selects the
// documented default.
type Config struct {
	// Stream is the Kinesis stream name. Required.
	Stream string
	// PartitionKey is the partition key of every record: the truck ID. One
	// key always lands on one shard, so a truck's records stay in order of
	// arrival within the shard. Required.
	PartitionKey string
	// MaxBackoff caps the wait between retries after server errors (5xx),
	// and when no new record arrives while the link is down; it is the
	// wait after a permanent or credentials error (stream not found,
	// access denied). A down link is probed on each new record, at most
	// once a second, and throttling is retried within a second, whatever
	// MaxBackoff says. Default 30 s.
	MaxBackoff time.Duration
	// Linger is how long to wait after the first record arrives before
	// sending, so that records can share a call and its ~470 B of fixed cost
	// at the TLS socket (signed request headers, the reply's request IDs,
	// framing). Default 0: send each record the moment it exists, which is
	// the freshest but costs the most bytes per record: at 1 Hz about 845 B
	// a fix, against 380 B with 10 s (TestBenchTLSBytesPerFix).
	Linger time.Duration
	// BackfillShare is the share of one shard's write limit the backlog may
	// use: Kinesis accepts at most 1,000 records/s and 1 MiB/s per shard
	// (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html),
	// shared by every truck whose key hashes to it. Default 0.5: a truck
	// catching up after an outage leaves half the shard to the others.
	// Only the backlog is paced; live records are never held back. The
	// share is a ceiling: the pace starts low after each outage and finds
	// what the shard has left by its throttles (pace.go). Values above 1
	// are rejected by Validate.
	BackfillShare float64
	// BackfillDelay is the most the backfill waits, a random time in
	// [0, BackfillDelay], after connectivity returns from an outage or at
	// start-up with a backlog, so that a thousand trucks leaving a depot do
	// not hit their shards at once. Live records are not delayed. Default
	// 30 s; negative means no delay.
	BackfillDelay time.Duration
	// StopTimeout is how long the call in flight when Run's ctx ends may
	// still take, so that records Kinesis stores are acknowledged rather
	// than sent again by the next run. Nothing new starts after ctx ends.
	// Default 5 s: within systemd's stop timeout, and the agent commits its
	// buffer tail after the uplink returns. Negative abandons the call at
	// once.
	StopTimeout time.Duration
	// Log receives the uplink's log lines. Default: slog.Default().
	Log *slog.Logger
}

// withDefaults returns cfg with zero optional fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Linger < 0 {
		cfg.Linger = 0
	}
	if cfg.BackfillShare <= 0 {
		cfg.BackfillShare = DefaultBackfillShare
	}
	switch {
	case cfg.BackfillDelay == 0:
		cfg.BackfillDelay = DefaultBackfillDelay
	case cfg.BackfillDelay < 0:
		cfg.BackfillDelay = 0
	}
	switch {
	case cfg.StopTimeout == 0:
		cfg.StopTimeout = DefaultStopTimeout
	case cfg.StopTimeout < 0:
		cfg.StopTimeout = 0
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return cfg
}

// Validate reports a configuration the uplink cannot run with.
func (cfg Config) Validate() error {
	if cfg.Stream == "" {
		return ErrNoStream
	}
	if cfg.PartitionKey == "" {
		return ErrNoPartitionKey
	}
	if len(cfg.PartitionKey) > 256 {
		// "Partition keys are Unicode strings with a maximum length limit
		// of 256 characters for each key."
		return fmt.Errorf("uplink: partition key %q: longer than 256 characters", cfg.PartitionKey)
	}
	if cfg.BackfillShare > 1 {
		return fmt.Errorf("uplink: backfill share %g: more than one shard's limit (at most 1)", cfg.BackfillShare)
	}
	return nil
}
