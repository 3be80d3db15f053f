package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

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

// credentialsLogEvery rate-limits the credentials log line: the counters
// and status show the failure meanwhile.
const credentialsLogEvery = 10 * time.Minute

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
