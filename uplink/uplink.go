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
	// MaxBackoff caps the wait between retries, and is the wait after a
	// permanent error (stream not found, access denied). Default 30 s.
	MaxBackoff time.Duration
	// Linger is how long to wait after the first record arrives before
	// sending, so that records can share a call and its ~700 B of HTTP
	// headers. Default 0: send each record the moment it exists, which is
	// the freshest but costs the most bytes per record.
	Linger time.Duration
	// BackfillShare is the share of one shard's write limit the backlog may
	// use: Kinesis accepts at most 1,000 records/s and 1 MiB/s per shard
	// (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html),
	// shared by every truck whose key hashes to it. Default 0.5: a truck
	// catching up after an outage leaves half the shard to the others.
	// Only the backlog is paced; live records are never held back. When
	// Kinesis throttles, the pace halves and recovers gradually. Values
	// above 1 are rejected by Validate.
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
	// hold is how long the backlog the last round left unsent waits for
	// the backfill delay or the pacer; -1 when nothing waits.
	hold         time.Duration
	pace         *pacer
	backfillAt   time.Time // no backfill before this (fleet jitter)
	startChecked bool      // the start-up backlog check is done
	callFailures int       // consecutive calls that got no reply or an error reply
	credsLogged  time.Time // when a credentials failure was last logged

	wire  *wireCounter                          // measured bytes, if the client has them
	randN func(max time.Duration) time.Duration // uniform in [0, max]; tests replace it
}

// Backfill scheduling.
const (
	// liveMax is how many of the newest records count as live: sent at
	// once, never paced or delayed. Ten covers a 10 s linger at 1 Hz; more
	// than that after an outage is backlog, or a fleet's trucks would all
	// burst at once when a depot's link returns.
	liveMax = 10
	// outageCalls is the streak of failed calls (no reply, or an error
	// reply) taken for an outage, after which the backfill is delayed:
	// one or two lost calls are routine on a cellular link.
	outageCalls = 3
	// credentialsLogEvery rate-limits the credentials log line: the
	// counters and status show the failure meanwhile.
	credentialsLogEvery = 10 * time.Minute
)

// New returns an Uplink sending what q holds to the stream through api.
// It starts no goroutine; call Run.
func New(cfg Config, api API, q Queue) *Uplink {
	cfg = cfg.withDefaults()
	u := &Uplink{
		cfg:      cfg,
		api:      api,
		q:        q,
		log:      cfg.Log,
		unacked:  make(map[uint64]struct{}),
		oversize: make(map[uint64]struct{}),
		stats:    Stats{FailedRecords: make(map[string]uint64), CallErrors: make(map[string]uint64)},
		pace:     newPacer(cfg.BackfillShare),
		wire:     wireOf(api),
		randN: func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return rand.N(max + 1)
		},
	}
	u.stats.BytesMeasured = u.wire != nil
	return u
}

// Run drains the queue until ctx ends, then returns nil. It returns an error
// only for a configuration it cannot run with, or if called twice at once.
//
// Failures never end Run: every error is classified, counted, logged here
// (once per change) and retried with backoff. When ctx ends, no new call
// starts; a call in flight may finish within Config.StopTimeout so that
// what Kinesis stored is acknowledged, then it is abandoned: its records
// stay in the queue and are sent again by the next Run (at least once).
func (u *Uplink) Run(ctx context.Context) error {
	if err := u.cfg.Validate(); err != nil {
		return fmt.Errorf("run uplink: %w", err)
	}
	if !u.running.CompareAndSwap(false, true) {
		return errors.New("run uplink: already running")
	}
	defer u.running.Store(false)
	u.setNextAttempt(time.Now())
	defer u.setNextAttempt(time.Time{})

	u.pace.start(time.Now())
	u.startChecked, u.backfillAt, u.callFailures = false, time.Time{}, 0
	notify := u.q.Notify()
	woke := true // the next send is the first after idling: linger applies
	for ctx.Err() == nil {
		if woke && u.cfg.Linger > 0 && u.wait(ctx, u.cfg.Linger, nil) == waitDone {
			break
		}
		woke = false
		if err := u.round(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			u.fail(err)
			if u.wait(ctx, u.backoff(err), nil) == waitDone {
				break
			}
			continue
		}
		// A round that sent nothing (the backlog waits for the pacer) is
		// no proof that Kinesis takes records again.
		if u.failures > 0 && u.lastBatch > 0 {
			u.recovered()
		}
		if u.lastBatch == 0 {
			// Idle, or the backlog waits for its delay or its tokens; a
			// new record ends the wait at once.
			w := u.wait(ctx, u.hold, notify)
			if w == waitDone {
				break
			}
			woke = w == waitWoken
		}
	}
	return nil
}

// round acknowledges what is owed, then sends one batch. It returns a
// *RetryableError or *PermanentError on failure.
func (u *Uplink) round(ctx context.Context) error {
	u.lastBatch, u.hold = 0, -1
	if len(u.unacked) > 0 {
		if err := u.ackOwed(); err != nil {
			return err
		}
	}
	batch, err := u.nextBatch(time.Now())
	if err != nil {
		return err
	}
	u.lastBatch = len(batch)
	u.mu.Lock()
	u.stats.BackfillRate = u.pace.rate()
	u.stats.BackfillAt = u.backfillAt
	u.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err // nothing new after ctx ends
	}
	return u.put(ctx, batch)
}

// How a wait ended.
const (
	waitDone    = iota // ctx ended
	waitTimeout        // d elapsed
	waitWoken          // wake fired
)

// wait blocks for d (forever if d < 0), until wake fires (if not nil), or
// until ctx ends, and says which. Stats.NextAttempt says when it ends.
func (u *Uplink) wait(ctx context.Context, d time.Duration, wake <-chan struct{}) int {
	var timeout <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
		u.setNextAttempt(time.Now().Add(d))
	} else {
		u.setNextAttempt(time.Time{})
	}
	defer func() { u.setNextAttempt(time.Now()) }()
	select {
	case <-ctx.Done():
		return waitDone
	case <-wake:
		return waitWoken
	case <-timeout:
		return waitTimeout
	}
}

// backoff returns how long to wait after err: MaxBackoff after a permanent
// error, otherwise exponential backoff with full jitter (uniform in
// [0, min(MaxBackoff, base*2^n)]), which spreads a fleet's retries after a
// regional outage instead of synchronising them.
func (u *Uplink) backoff(err error) time.Duration {
	if needsPerson(err) {
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
// Live first: the newest records (up to liveMax) above anything Kinesis has
// stored (ackedMark) go first and at once, so that after an outage the
// dashboard gets the truck's position now. The capacity left is filled with
// the backlog, oldest first, as far as the pacer allows, and not before the
// backfill delay after start-up or an outage. With no live record, a
// backfill call waits until the pacer holds a full call's worth (or the
// whole backlog), so the backlog goes in few, full calls. While calls fail,
// the backlog is held back: a call carries the live records, or one backlog
// record as a probe, so a dead link is not fed 5 MiB uploads.
//
// It sets u.hold when backlog records are left waiting.
func (u *Uplink) nextBatch(now time.Time) ([]Record, error) {
	b := newBatch(len(u.cfg.PartitionKey))
	newest, err := u.q.Newest(liveMax)
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
	live := len(b.recs)
	u.pace.refill(now)
	u.pace.take(live, b.bytes)

	cands, candBytes, err := u.backlog(b)
	if err != nil {
		return nil, err
	}
	first := !u.startChecked
	u.startChecked = true
	if len(cands) == 0 {
		return b.recs, nil
	}
	if first {
		u.delayBackfill(now, "start-up with a backlog")
	}
	switch {
	case now.Before(u.backfillAt):
		u.hold = u.backfillAt.Sub(now)
		return b.recs, nil
	case u.callFailures > 0:
		if live == 0 {
			r := cands[0]
			u.pace.take(1, len(r.Data)+b.keyLen)
			b.add(r)
		}
		return b.recs, nil
	case live == 0:
		if ok, wait := u.pace.ready(len(cands), candBytes); !ok {
			u.hold = wait
			return b.recs, nil
		}
	}
	for _, r := range cands {
		if !u.pace.allow(len(r.Data)+b.keyLen) || !b.add(r) {
			break
		}
	}
	if len(b.recs) == 0 {
		u.hold = time.Millisecond // cannot happen with a ready pacer; never sleep forever
	}
	return b.recs, nil
}

// backlog returns the pending records not in b, oldest first, that would
// fit in b after its records, and their bytes (with partition keys).
func (u *Uplink) backlog(b *batch) ([]Record, int, error) {
	var (
		cands []Record
		after uint64
		n     = len(b.recs)
		bytes = b.bytes
	)
	// Bounded: skipped records (oversize, unacked, live) are few.
	for page := 0; page < 4; page++ {
		recs, err := u.q.Oldest(after, MaxRecordsPerCall)
		if err != nil {
			return nil, 0, &RetryableError{Code: "queue", Err: fmt.Errorf("read oldest records after seq %d: %w", after, err)}
		}
		for _, r := range recs {
			if b.has(r.Seq) || u.skip(r) {
				continue
			}
			size := len(r.Data) + b.keyLen
			if n >= MaxRecordsPerCall || bytes+size > MaxCallBytes {
				return cands, bytes - b.bytes, nil
			}
			cands = append(cands, r)
			n++
			bytes += size
		}
		if len(recs) < MaxRecordsPerCall {
			break
		}
		after = recs[len(recs)-1].Seq
	}
	return cands, bytes - b.bytes, nil
}

// delayBackfill holds the backlog back for a random time in [0,
// BackfillDelay].
func (u *Uplink) delayBackfill(now time.Time, why string) {
	d := u.randN(u.cfg.BackfillDelay)
	u.backfillAt = now.Add(d)
	if d > 0 {
		u.log.Info("uplink: backfill delayed to spread the fleet's load", "after", why, "delay", d.Round(time.Millisecond))
	}
}

// admit adds r to b unless it must be skipped; it reports false when b is
// full.
func (u *Uplink) admit(b *batch, r Record) bool {
	if u.skip(r) {
		return true
	}
	return b.add(r)
}

// skip reports whether r must not be sent: already stored (ack owed), or
// too large ever to be accepted (counted and logged the first time).
func (u *Uplink) skip(r Record) bool {
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
	return false
}

// put sends batch in one PutRecords call, acknowledges what Kinesis stored
// and returns the error of what it did not, if anything. If ctx ends during
// the call, the call may go on for Config.StopTimeout.
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
	if u.wire == nil {
		u.stats.BytesSent += uint64(sent)
	}
	u.mu.Unlock()

	callCtx, cancel := u.callContext(ctx)
	out, err := u.api.PutRecords(callCtx, in)
	abandoned := callCtx.Err()
	cancel()
	now := time.Now()
	if err != nil {
		if abandoned != nil {
			return abandoned
		}
		cerr := classify(err)
		u.callFailures++
		u.mu.Lock()
		u.stats.CallErrors[errCode(cerr)]++
		if u.wire == nil {
			u.stats.BytesReceived += uint64(replyHeaderBytes)
		}
		u.noteThrottle(now, cerr)
		u.mu.Unlock()
		return fmt.Errorf("put %d records: %w", len(batch), cerr)
	}
	if u.callFailures >= outageCalls {
		u.delayBackfill(now, fmt.Sprintf("%d failed calls", u.callFailures))
	}
	u.callFailures = 0
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
	if u.wire == nil {
		u.stats.BytesReceived += uint64(recv)
	}
	for i, e := range out.Records {
		// kinesis-mock writes "ErrorCode": null on success; the real service
		// omits it. Both decode to nil; treat empty as success too.
		if code := aws.ToString(e.ErrorCode); code != "" {
			rerr := classifyCode(code, aws.ToString(e.ErrorMessage), nil)
			u.stats.FailedRecords[code]++
			u.noteThrottle(now, rerr)
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
		if len(acks) > 0 {
			// Progress: Kinesis stored part of the call. The failed records are retried after the first step's
			// back-off, not one that grows with every partly failed call: on a busy shard nearly every call has
			// a throttled record, and the pacer already slows the backlog for those.
			u.failures = 0
		}
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

// noteThrottle counts err if it is throttling, and slows the backfill.
// Callers hold u.mu.
func (u *Uplink) noteThrottle(now time.Time, err error) {
	var re *RetryableError
	if errors.As(err, &re) && re.Throttle {
		u.stats.Throttles++
		u.pace.throttled(now)
	}
}

// callContext returns the context of one call: it ignores the end of ctx
// for up to Config.StopTimeout, so that a call in flight on stop can still
// return its sequence numbers, and ends after MaxCallTime, whatever the API.
// cancel must be called when the call returns.
func (u *Uplink) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), MaxCallTime)
	returned := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(u.cfg.StopTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-returned:
		}
	})
	return callCtx, func() {
		close(returned)
		stop()
		cancel()
	}
}

// worse returns the more severe of a and b: what needs a person beats
// what clears by itself.
func worse(a, b error) error {
	if a == nil || (needsPerson(b) && !needsPerson(a)) {
		return b
	}
	return a
}

// fail records a failed round: counters, last error, and a log line when
// the failure differs from the last one logged.
func (u *Uplink) fail(err error) {
	u.failures++
	now := time.Now()
	u.mu.Lock()
	u.stats.LastError = err.Error()
	u.stats.LastErrorTime = now
	u.mu.Unlock()

	var pe *PermanentError
	var ce *CredentialsError
	key := errKey(err)
	switch {
	case key == u.logged:
	case errors.As(err, &ce):
		// A source that flips between failing and unreachable (an IoT
		// provider in poor coverage) would otherwise log at every flip.
		if !u.credsLogged.IsZero() && now.Sub(u.credsLogged) < credentialsLogEvery {
			return
		}
		u.logged, u.credsLogged = key, now
		u.log.Error("uplink: no aws credentials kinesis accepts; retrying every max backoff",
			"stream", u.cfg.Stream, "err", err, "retry_in", u.cfg.MaxBackoff)
	case errors.As(err, &pe):
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

// setNextAttempt publishes when the run loop is next due (Stats.NextAttempt).
func (u *Uplink) setNextAttempt(t time.Time) {
	u.mu.Lock()
	u.stats.NextAttempt = t
	u.mu.Unlock()
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
	var ce *CredentialsError
	if errors.As(err, &ce) {
		return "credentials " + ce.Code + " " + ce.Message
	}
	var re *RetryableError
	if errors.As(err, &re) {
		return "retryable " + re.Code + " " + re.Message
	}
	return err.Error()
}
