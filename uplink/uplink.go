package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Record is one opaque record waiting to be sent. The uplink never modifies
// Data and does not keep it after the record is acknowledged.
type Record struct {
	Seq  uint64 // queue sequence number, unique and increasing
	Data []byte // the Kinesis record payload
}

// Queue is what the uplink drains.
//
// Contract: the uplink calls Ack for a record only after Kinesis returned a
// sequence number for it; until then the record must stay pending, whatever
// happens to the uplink (cancellation, crash). A record is deleted only by
// Ack (or by the queue's own bounds). Methods are called from the Run
// goroutine only, one at a time. Returned slices and their Data are owned by
// the uplink until the next call; the queue must not modify them.
type Queue interface {
	// Oldest returns up to max pending records with Seq > after, in
	// ascending Seq order.
	Oldest(after uint64, max int) ([]Record, error)
	// Newest returns up to max of the newest pending records, in descending
	// Seq order.
	Newest(max int) ([]Record, error)
	// Ack deletes the given records: Kinesis has stored them. Unknown
	// sequence numbers (already evicted) must be ignored, not errors.
	Ack(seqs ...uint64) error
	// Notify returns a channel signalled after records are added. It must
	// not lose a wake-up: use a channel with a buffer of one and a
	// non-blocking send, so that a signal sent while the uplink is busy is
	// seen when it next waits. The same channel is returned every time.
	Notify() <-chan struct{}
}

// API is the one Kinesis method the uplink uses. *kinesis.Client satisfies
// it; tests fake it with a function type.
type API interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

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
	// DefaultMaxBackoff caps retry waits: long enough not to hammer a
	// throttled shard or a stream that is gone, short enough that the
	// dashboard catches up within half a minute of the link returning.
	DefaultMaxBackoff = 30 * time.Second
	// baseBackoff is the first retry's ceiling; one fix interval is 1 s, so
	// a quick retry of a transient 5xx costs almost no freshness.
	baseBackoff = 100 * time.Millisecond
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
	// MaxBackoff caps the wait between retries, and is the wait after a
	// permanent error (stream not found, access denied). Default 30 s.
	MaxBackoff time.Duration
	// Linger is how long to wait after the first record arrives before
	// sending, so that records can share a call and its ~700 B of HTTP
	// headers. Default 0: send each record the moment it exists, which is
	// the freshest but costs the most bytes per record.
	Linger time.Duration
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
	return nil
}

// Uplink drains a Queue into a Kinesis stream. Create it with New and start
// it with Run.
type Uplink struct {
	cfg     Config
	api     API
	q       Queue
	log     *slog.Logger
	running atomic.Bool

	mu    sync.Mutex // guards stats
	stats Stats

	// State owned by the Run goroutine.
	unacked   map[uint64]struct{} // stored by Kinesis, Ack failed: never resend
	oversize  map[uint64]struct{} // can never be sent; skipped
	ackedMark uint64              // highest Seq Kinesis has stored
	failures  int                 // consecutive failed rounds
	logged    string              // key of the last failure logged, "" when healthy
	lastBatch int                 // records in the last round's batch
}

// New returns an Uplink sending what q holds to the stream through api.
// It starts no goroutine; call Run.
func New(cfg Config, api API, q Queue) *Uplink {
	cfg = cfg.withDefaults()
	return &Uplink{
		cfg:      cfg,
		api:      api,
		q:        q,
		log:      cfg.Log,
		unacked:  make(map[uint64]struct{}),
		oversize: make(map[uint64]struct{}),
		stats:    Stats{FailedRecords: make(map[string]uint64), CallErrors: make(map[string]uint64)},
	}
}

// Run drains the queue until ctx ends, then returns nil. It returns an error
// only for a configuration it cannot run with, or if called twice at once.
//
// Failures never end Run: every error is classified, counted, logged here
// (once per change) and retried with backoff. When ctx ends during a call,
// the call is abandoned; its records stay in the queue and are sent again by
// the next Run (at least once).
func (u *Uplink) Run(ctx context.Context) error {
	if err := u.cfg.Validate(); err != nil {
		return fmt.Errorf("run uplink: %w", err)
	}
	if !u.running.CompareAndSwap(false, true) {
		return errors.New("run uplink: already running")
	}
	defer u.running.Store(false)

	notify := u.q.Notify()
	woke := true // the next send is the first after idling: linger applies
	for ctx.Err() == nil {
		if woke && u.cfg.Linger > 0 && !u.wait(ctx, u.cfg.Linger, nil) {
			break
		}
		woke = false
		if err := u.round(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			u.fail(err)
			if !u.wait(ctx, u.backoff(err), nil) {
				break
			}
			continue
		}
		if u.failures > 0 {
			u.recovered()
		}
		if u.idle() {
			if !u.wait(ctx, -1, notify) {
				break
			}
			woke = true
		}
	}
	return nil
}

// idle reports whether the last round found nothing to send.
func (u *Uplink) idle() bool { return u.lastBatch == 0 }

// round acknowledges what is owed, then sends one batch. It returns a
// *RetryableError or *PermanentError on failure.
func (u *Uplink) round(ctx context.Context) error {
	u.lastBatch = 0
	if len(u.unacked) > 0 {
		if err := u.ackOwed(); err != nil {
			return err
		}
	}
	batch, err := u.nextBatch()
	if err != nil {
		return err
	}
	u.lastBatch = len(batch)
	if len(batch) == 0 {
		return nil
	}
	return u.put(ctx, batch)
}

// wait blocks for d (forever if d < 0), until wake fires (if not nil), or
// until ctx ends. It reports false if ctx ended.
func (u *Uplink) wait(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	var timeout <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-wake:
		return true
	case <-timeout:
		return true
	}
}

// backoff returns how long to wait after err: MaxBackoff after a permanent
// error, otherwise exponential backoff with full jitter (uniform in
// [0, min(MaxBackoff, base*2^n)]), which spreads a fleet's retries after a
// regional outage instead of synchronising them.
func (u *Uplink) backoff(err error) time.Duration {
	var pe *PermanentError
	if errors.As(err, &pe) {
		return u.cfg.MaxBackoff
	}
	ceiling := u.cfg.MaxBackoff
	if n := u.failures - 1; n < 30 {
		if c := baseBackoff << n; c < ceiling {
			ceiling = c
		}
	}
	return rand.N(ceiling + 1)
}

// nextBatch chooses the records of the next call.
//
// Live first: records newer than anything Kinesis has stored (ackedMark)
// go first, newest first, so that after an outage the dashboard gets the
// truck's position now. The capacity left is filled with the backlog,
// oldest first. With no backlog both are the same records.
func (u *Uplink) nextBatch() ([]Record, error) {
	b := newBatch(len(u.cfg.PartitionKey))
	newest, err := u.q.Newest(MaxRecordsPerCall)
	if err != nil {
		return nil, &RetryableError{Code: "queue", Err: fmt.Errorf("read newest records: %w", err)}
	}
	for _, r := range newest {
		if r.Seq <= u.ackedMark || !u.admit(b, r) {
			break
		}
	}
	// Within the call, keep arrival order. (PutRecords does not guarantee
	// order anyway; downstream orders by the record's own seq.)
	slices.Reverse(b.recs)
	var after uint64
	// Bounded: skipped records (oversize, unacked) are few.
	for page := 0; page < 4 && !b.full(); page++ {
		recs, err := u.q.Oldest(after, MaxRecordsPerCall)
		if err != nil {
			return nil, &RetryableError{Code: "queue", Err: fmt.Errorf("read oldest records after seq %d: %w", after, err)}
		}
		for _, r := range recs {
			if b.has(r.Seq) {
				continue
			}
			if !u.admit(b, r) {
				break
			}
		}
		if len(recs) < MaxRecordsPerCall {
			break
		}
		after = recs[len(recs)-1].Seq
	}
	return b.recs, nil
}

// admit adds r to b unless it must be skipped; it reports false when b is
// full.
func (u *Uplink) admit(b *batch, r Record) bool {
	if _, ok := u.unacked[r.Seq]; ok {
		return true
	}
	if _, ok := u.oversize[r.Seq]; ok {
		return true
	}
	if len(r.Data)+len(u.cfg.PartitionKey) > MaxRecordBytes {
		u.oversize[r.Seq] = struct{}{}
		u.mu.Lock()
		u.stats.Oversize++
		u.mu.Unlock()
		u.log.Error("uplink: record too large for kinesis, skipped", "seq", r.Seq,
			"bytes", len(r.Data), "limit", MaxRecordBytes)
		return true
	}
	return b.add(r)
}

// put sends batch in one PutRecords call, acknowledges what Kinesis stored
// and returns the error of what it did not, if anything.
func (u *Uplink) put(ctx context.Context, batch []Record) error {
	key := aws.String(u.cfg.PartitionKey)
	entries := make([]types.PutRecordsRequestEntry, len(batch))
	for i, r := range batch {
		entries[i] = types.PutRecordsRequestEntry{Data: r.Data, PartitionKey: key}
	}
	in := &kinesis.PutRecordsInput{StreamName: aws.String(u.cfg.Stream), Records: entries}
	sent := requestBytes(u.cfg.Stream, u.cfg.PartitionKey, batch)

	u.mu.Lock()
	u.stats.Calls++
	u.stats.RecordsSent += uint64(len(batch))
	if u.failures > 0 {
		u.stats.Retries++
	}
	u.stats.BytesSent += uint64(sent)
	u.mu.Unlock()

	out, err := u.api.PutRecords(ctx, in)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		cerr := classify(err)
		u.mu.Lock()
		u.stats.CallErrors[errCode(cerr)]++
		u.stats.BytesReceived += uint64(replyHeaderBytes)
		u.noteThrottle(cerr)
		u.mu.Unlock()
		return fmt.Errorf("put %d records: %w", len(batch), cerr)
	}
	if len(out.Records) != len(batch) {
		return fmt.Errorf("put %d records: %w", len(batch), &RetryableError{
			Code: "malformed reply", Message: fmt.Sprintf("%d results for %d records", len(out.Records), len(batch))})
	}

	var (
		acks  []uint64
		worst error
		recv  = replyBytes(out)
	)
	u.mu.Lock()
	u.stats.BytesReceived += uint64(recv)
	for i, e := range out.Records {
		// kinesis-mock writes "ErrorCode": null on success; the real service
		// omits it. Both decode to nil; treat empty as success too.
		if code := aws.ToString(e.ErrorCode); code != "" {
			rerr := classifyCode(code, aws.ToString(e.ErrorMessage), nil)
			u.stats.FailedRecords[code]++
			u.noteThrottle(rerr)
			worst = worse(worst, rerr)
			continue
		}
		if aws.ToString(e.SequenceNumber) == "" {
			const code = "no sequence number"
			u.stats.FailedRecords[code]++
			worst = worse(worst, &RetryableError{Code: code})
			continue
		}
		acks = append(acks, batch[i].Seq)
		u.ackedMark = max(u.ackedMark, batch[i].Seq)
	}
	if len(acks) > 0 {
		u.stats.LastSuccess = time.Now()
	}
	u.mu.Unlock()

	if len(acks) > 0 {
		if err := u.q.Ack(acks...); err != nil {
			for _, s := range acks {
				u.unacked[s] = struct{}{}
			}
			return &RetryableError{Code: "queue", Err: fmt.Errorf("ack %d records stored by kinesis: %w", len(acks), err)}
		}
		u.mu.Lock()
		u.stats.RecordsAcked += uint64(len(acks))
		u.mu.Unlock()
	}
	if worst != nil {
		return fmt.Errorf("put %d records: %d failed: %w", len(batch), len(batch)-len(acks), worst)
	}
	return nil
}

// ackOwed retries acknowledging records Kinesis stored but the queue failed
// to delete.
func (u *Uplink) ackOwed() error {
	seqs := make([]uint64, 0, len(u.unacked))
	for s := range u.unacked {
		seqs = append(seqs, s)
	}
	if err := u.q.Ack(seqs...); err != nil {
		return &RetryableError{Code: "queue", Err: fmt.Errorf("ack %d records stored by kinesis: %w", len(seqs), err)}
	}
	clear(u.unacked)
	u.mu.Lock()
	u.stats.RecordsAcked += uint64(len(seqs))
	u.mu.Unlock()
	return nil
}

// noteThrottle counts err if it is throttling. Callers hold u.mu.
func (u *Uplink) noteThrottle(err error) {
	var re *RetryableError
	if errors.As(err, &re) && re.Throttle {
		u.stats.Throttles++
	}
}

// worse returns the more severe of a and b: permanent beats retryable.
func worse(a, b error) error {
	var pe *PermanentError
	if a == nil || (errors.As(b, &pe) && !errors.As(a, &pe)) {
		return b
	}
	return a
}

// fail records a failed round: counters, last error, and a log line when
// the failure differs from the last one logged.
func (u *Uplink) fail(err error) {
	u.failures++
	u.mu.Lock()
	u.stats.LastError = err.Error()
	u.stats.LastErrorTime = time.Now()
	u.mu.Unlock()

	var pe *PermanentError
	permanent := errors.As(err, &pe)
	key := errKey(err)
	switch {
	case key == u.logged:
	case permanent:
		u.logged = key
		u.log.Error("uplink: kinesis rejects records; retrying every max backoff",
			"stream", u.cfg.Stream, "err", err, "retry_in", u.cfg.MaxBackoff)
	case u.failures >= 3:
		// Transient errors are routine on a cellular link: say so only when
		// they persist.
		u.logged = key
		u.log.Warn("uplink: sending to kinesis keeps failing; retrying with backoff",
			"stream", u.cfg.Stream, "err", err, "failures", u.failures)
	}
}

// recovered records a successful round after failures.
func (u *Uplink) recovered() {
	if u.logged != "" {
		u.log.Info("uplink: sending to kinesis again", "stream", u.cfg.Stream, "after_failures", u.failures)
	}
	u.failures = 0
	u.logged = ""
}

// errKey identifies a failure for log deduplication: its kind, code and AWS
// message, not its details (addresses, request IDs).
func errKey(err error) string {
	var pe *PermanentError
	if errors.As(err, &pe) {
		return "permanent " + pe.Code + " " + pe.Message
	}
	var re *RetryableError
	if errors.As(err, &re) {
		return "retryable " + re.Code + " " + re.Message
	}
	return err.Error()
}
