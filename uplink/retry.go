package uplink

import (
	"context"
	"math/rand/v2"
	"time"
)

// Retry timing after a failed round.
const (
	// probeEvery is the shortest time between two calls while the link
	// is down: a new record (one a second at 1 Hz) is the trigger, so a
	// returned link is noticed within about a second, and a probe costs
	// one record's call, or only a SYN where nothing answers.
	probeEvery = time.Second
	// probeEveryLong replaces probeEvery once the link has been down for
	// probeSlowAfter: a long dead zone (a depot, a tunnel) then costs a
	// fifth of that, and a link back after minutes is noticed within 5 s.
	probeEveryLong = 5 * time.Second
	probeSlowAfter = 5 * time.Minute
	// throttleRetryMax caps the wait after throttling: a throttled live
	// record goes again within a second. The backlog is slowed by the
	// pacer, which halves its pace on every throttle.
	throttleRetryMax = time.Second
)

// retryWait waits after the failed round err, and says how the wait ended.
//
//   - A permanent or credentials error waits Config.MaxBackoff: no amount of
//     fast retrying fixes it.
//   - The link is down (err is Offline): the next call, a probe of the
//     newest record, goes when a new record arrives, but not within
//     probeEvery (probeEveryLong after probeSlowAfter down) of the last
//     call's start; without new records, after the usual backoff.
//   - Throttling: within throttleRetryMax, jittered.
//   - Anything else (5xx, a malformed reply, the queue): exponential
//     backoff with full jitter, capped at Config.MaxBackoff.
func (l *loop) retryWait(ctx context.Context, err error, notify <-chan struct{}) int {
	switch {
	case needsPerson(err):
		return l.wait(ctx, l.cfg.MaxBackoff, nil)
	case offline(err):
		return l.probeWait(ctx, notify)
	case throttled(err):
		return l.wait(ctx, l.throttleBackoff(), nil)
	}
	return l.wait(ctx, l.backoff(), nil)
}

// probeWait waits for the next probe of a down link.
func (l *loop) probeWait(ctx context.Context, notify <-chan struct{}) int {
	gap := probeEvery
	if time.Since(l.downSince) >= probeSlowAfter {
		gap = probeEveryLong
	}
	earliest := l.callStart.Add(gap)
	w := l.wait(ctx, max(l.backoff(), time.Until(earliest)), notify)
	if w != waitWoken {
		return w
	}
	if rest := time.Until(earliest); rest > 0 {
		return l.wait(ctx, rest, nil)
	}
	return w
}

// backoff returns exponential backoff with full jitter (uniform in
// [0, min(MaxBackoff, base*2^n)]), which spreads a fleet's retries after a
// regional outage instead of synchronising them.
func (l *loop) backoff() time.Duration {
	ceiling := l.cfg.MaxBackoff
	if n := l.failures - 1; n < 30 {
		if c := baseBackoff << n; c < ceiling {
			ceiling = c
		}
	}
	return rand.N(ceiling + 1)
}

// throttleBackoff returns the wait after throttling: exponential from
// baseBackoff up to throttleRetryMax, with equal jitter (at least half the
// ceiling), so a throttled shard is never hit in a busy loop.
func (l *loop) throttleBackoff() time.Duration {
	ceiling := min(throttleRetryMax, l.cfg.MaxBackoff)
	if n := l.failures - 1; n < 30 {
		ceiling = min(ceiling, baseBackoff<<n)
	}
	return ceiling/2 + rand.N(ceiling/2+1)
}
