package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Uplink drains a Queue into a Kinesis stream. Create it with New and start
// it with Run. It keeps the configuration, the collaborators and the
// counters; what one Run needs lives in that Run's loop.
type Uplink struct {
	cfg     Config
	api     API
	q       Queue
	log     *slog.Logger
	running atomic.Bool

	stats *counters
	aside *aside // the next record for another stream (aside.go)

	randN func(max time.Duration) time.Duration // uniform in [0, max]; tests replace it
}

// loop is the state of one Run, touched by its goroutine only. Run creates
// it, so a second Run starts afresh rather than inheriting half of the
// first one's state.
type loop struct {
	*Uplink

	unacked   map[uint64]struct{} // stored by Kinesis, Ack failed: never resend
	oversize  map[uint64]struct{} // can never be sent; skipped
	ackedMark uint64              // highest Seq Kinesis has stored
	failures  int                 // consecutive failed rounds
	logged    string              // key of the last failure logged, "" when healthy
	lastBatch int                 // records in the last round's batch
	lastLive  int                 // of those, live records (queued within the live window)
	// hold is how long the backlog the last round left unsent waits for
	// the backfill delay or the pacer; -1 when nothing waits.
	hold         time.Duration
	pace         *pacer
	backfillAt   time.Time // no backfill before this (fleet jitter)
	startChecked bool      // the start-up backlog check is done
	callFailures int       // consecutive calls that got no reply or an error reply
	credsLogged  time.Time // when a credentials failure was last logged
	// offline is set while the link is down (the last call got no reply
	// at all): calls are probes of the newest record, tried again at most
	// every probeEvery while new records arrive (retryWait).
	offline   bool
	downSince time.Time // when the current streak of failed rounds began
	callStart time.Time // when the last call began
	meter     linkMeter // the link's measured round trip and upload rate
}

// New returns an Uplink sending what q holds to the stream through api.
// It starts no goroutine; call Run.
func New(cfg Config, api API, q Queue) *Uplink {
	cfg = cfg.withDefaults()
	u := &Uplink{
		cfg:   cfg,
		api:   api,
		q:     q,
		log:   cfg.Log,
		stats: newCounters(wireOf(api)),
		aside: newAside(),
		randN: func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return rand.N(max + 1)
		},
	}
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
		return fmt.Errorf("run uplink: %w", ErrRunning)
	}
	defer u.running.Store(false)
	u.stats.nextAttempt(time.Now())
	defer u.stats.nextAttempt(time.Time{})

	l := &loop{
		Uplink:   u,
		unacked:  make(map[uint64]struct{}),
		oversize: make(map[uint64]struct{}),
		pace:     newPacer(u.cfg.BackfillShare, u.randN),
	}
	l.pace.start(time.Now())
	l.run(ctx)
	return nil
}

// run sends rounds until ctx ends: linger after idling, back off after a
// failure, wait for new records or the backlog's pace when nothing is sent.
func (l *loop) run(ctx context.Context) {
	notify := l.q.Notify()
	woke := true // the next send is the first after idling: linger applies
	for ctx.Err() == nil {
		if l.aside.waiting() {
			l.sendAside(ctx) // between rounds: a backlog that never waits still lets it out
		}
		if woke && l.cfg.Linger > 0 && l.wait(ctx, l.cfg.Linger, nil) == waitDone {
			return
		}
		woke = false
		if err := l.round(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			l.fail(err)
			w := l.retryWait(ctx, err, notify)
			if w == waitDone {
				return
			}
			continue
		}
		// A round that sent nothing (the backlog waits for the pacer) is
		// no proof that Kinesis takes records again.
		if l.failures > 0 && l.lastBatch > 0 {
			l.recovered()
		}
		switch {
		case l.lastBatch == 0:
			// Idle, or the backlog waits for its delay or its tokens; a
			// new record ends the wait at once.
			w := l.wait(ctx, l.hold, notify)
			if w == waitDone {
				return
			}
			woke = w == waitWoken
		case l.cfg.Linger > 0 && l.hold < 0 && l.lastLive == l.lastBatch:
			// The call carried live records alone and no backlog waits:
			// what arrived while it was in flight lingers like the rest,
			// so that it shares the next call instead of going alone.
			woke = true
		}
	}
}

// round acknowledges what is owed, then sends one batch. It returns a
// *RetryableError or *PermanentError on failure.
func (l *loop) round(ctx context.Context) error {
	l.lastBatch, l.lastLive, l.hold = 0, 0, -1
	if len(l.unacked) > 0 {
		if err := l.ackOwed(); err != nil {
			return err
		}
	}
	batch, err := l.nextBatch(time.Now())
	if err != nil {
		return err
	}
	l.lastBatch = len(batch)
	l.stats.backfill(l.pace.rate(), l.backfillAt)
	if len(batch) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err // nothing new after ctx ends
	}
	return l.put(ctx, batch)
}

// How a wait ended.
const (
	waitDone    = iota // ctx ended
	waitTimeout        // d elapsed
	waitWoken          // wake fired
)

// wait blocks for d (forever if d < 0), until wake fires (if not nil), or
// until ctx ends, and says which. Stats.NextAttempt says when it ends.
func (l *loop) wait(ctx context.Context, d time.Duration, wake <-chan struct{}) int {
	var (
		timeout <-chan time.Time
		due     time.Time
	)
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
		due = time.Now().Add(d)
	}
	l.stats.nextAttempt(due)
	defer func() { l.stats.nextAttempt(time.Now()) }()
	for {
		select {
		case <-ctx.Done():
			return waitDone
		case <-wake:
			return waitWoken
		case <-timeout:
			return waitTimeout
		case <-l.aside.wake:
			// An aside goes out during the wait; the wait goes on after it
			// (a fix that came meanwhile is seen at once: wake is buffered).
			l.sendAside(ctx)
			l.stats.nextAttempt(due)
		}
	}
}

// fail records a failed round: counters, last error, and a log line when
// the failure differs from the last one logged.
func (l *loop) fail(err error) {
	l.failures++
	now := time.Now()
	if l.failures == 1 {
		l.downSince = now
	}
	l.stats.failed(err, now)

	var pe *PermanentError
	var ce *CredentialsError
	key := errKey(err)
	switch {
	case key == l.logged:
	case errors.As(err, &ce):
		// A source that flips between failing and unreachable (an IoT
		// provider in poor coverage) would otherwise log at every flip.
		if !l.credsLogged.IsZero() && now.Sub(l.credsLogged) < credentialsLogEvery {
			return
		}
		l.logged, l.credsLogged = key, now
		l.log.Error("uplink: no aws credentials kinesis accepts; retrying every max backoff",
			"stream", l.cfg.Stream, "err", err, "retry_in", l.cfg.MaxBackoff)
	case errors.As(err, &pe):
		l.logged = key
		l.log.Error("uplink: kinesis rejects records; retrying every max backoff",
			"stream", l.cfg.Stream, "err", err, "retry_in", l.cfg.MaxBackoff)
	case l.failures >= 3:
		// Transient errors are routine on a cellular link: say so only when
		// they persist.
		l.logged = key
		l.log.Warn("uplink: sending to kinesis keeps failing; retrying with backoff",
			"stream", l.cfg.Stream, "err", err, "failures", l.failures)
	}
}

// credentialsLogEvery rate-limits the credentials log line: the counters
// and status show the failure meanwhile.
const credentialsLogEvery = 10 * time.Minute

// recovered records a successful round after failures.
func (l *loop) recovered() {
	if l.logged != "" {
		l.log.Info("uplink: sending to kinesis again", "stream", l.cfg.Stream, "after_failures", l.failures)
	}
	l.failures = 0
	l.logged = ""
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
