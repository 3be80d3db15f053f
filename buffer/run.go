package buffer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// logEvery rate-limits repeated warnings (drops, commit errors): flash
// gateways keep their logs on the same flash.
const logEvery = time.Minute

// Run commits the tail until ctx ends, then commits once more and returns
// nil, or the final commit's error.
//
// Each record has a commit deadline: its Append plus Options.CommitInterval,
// on the monotonic clock. Run sleeps until the earliest deadline among the
// tail's unacked records and then writes the whole unacked tail in one
// transaction: a record acked before its deadline, while no other record fell
// due, never touches the disk (an uplink that acks every record within the
// interval causes no write at all), none waits longer than the interval, and
// offline the records of one interval share one commit. Acks of committed
// records, evictions and seq reservations ride in those commits; deletions
// and reservations also get a commit of their own, at most once per interval
// (a committed record acked is deleted within about one interval), and
// evictions too when no record is pending.
// A failed commit (e.g. disk full) keeps the tail in memory, is counted in
// Stats, logged at most once a minute, and retried one interval later. Only
// one Run may be active at a time. Call Close after Run has returned.
func (b *Buffer) Run(ctx context.Context) error {
	if err := b.lockWritable(); err != nil {
		return err
	}
	if b.running {
		b.mu.Unlock()
		return ErrRunning
	}
	b.running = true
	l := &commitLoop{b: b, interval: b.opts.CommitInterval, kick: make(chan struct{}, 1)}
	b.kick = l.kick
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.running = false
		b.kick = nil
		b.mu.Unlock()
	}()
	return l.run(ctx)
}

// commitLoop is Run's state: only Run's goroutine touches it. Instants are
// monotonic durations since Buffer.epoch, as entry.born.
type commitLoop struct {
	b        *Buffer
	interval time.Duration
	// kick wakes the loop when a deadline appears that it may not be
	// sleeping for: the first unacked record in an empty tail, the first ack
	// of a committed record. Append and Ack send without blocking.
	kick    chan struct{}
	lastTry time.Duration // when the last commit attempt ended (Run's start before any)
	retryAt time.Duration // after a failed commit, no attempt before it
	// A compaction copies on its own goroutine so the commits, and with them
	// the loss window, go on; Run waits for it (ctx stops it) before returning.
	compacting chan struct{}
}

func (l *commitLoop) run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour) // armed by nextDue below
	timer.Stop()
	defer timer.Stop()
	defer func() {
		if l.compacting != nil {
			<-l.compacting
		}
	}()
	l.lastTry = l.b.mono()
	for {
		var fire <-chan time.Time
		if due, ok := l.nextDue(); ok {
			timer.Reset(max(due-l.b.mono(), 0))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			if l.compacting != nil {
				<-l.compacting
				l.compacting = nil
			}
			if err := l.b.Commit(); err != nil {
				return fmt.Errorf("buffer run: final commit: %w", err)
			}
			return nil
		case <-l.compacting:
			l.compacting = nil
		case <-l.kick:
		case <-fire:
			if err := l.wake(ctx); err != nil {
				return err
			}
		}
	}
}

// nextDue returns when the loop must next wake, or false when nothing is
// pending and it may sleep until kicked: the deadline of the oldest unacked
// tail record or, if sooner, with acked committed records to delete or a seq
// block to reserve (or records to evict, when no record is pending), one
// interval after the last commit attempt; never before retryAt. It also
// forgets the acked records at the front of the tail, which online no
// commit would ever clear.
func (l *commitLoop) nextDue() (time.Duration, bool) {
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inflight == 0 { // a commit in flight must still find its acked records in the tail
		i := 0
		for i < len(b.tail) && b.tail[i].acked {
			i++
		}
		clear(b.tail[:i])
		b.tail = b.tail[i:]
	}
	var due time.Duration
	ok := false
	for _, e := range b.tail {
		if !e.acked {
			due, ok = e.born+l.interval, true
			break
		}
	}
	// Deletions and reservations must not wait for a record to fall due:
	// online none ever does. Evictions wait for a pending record's commit
	// when there is one: offline with the buffer full every commit evicts,
	// and a commit of their own just before it would double the writes.
	house := len(b.ackedDisk) > 0 || b.reserveDue()
	if !ok {
		house = house || b.evictDue(b.latest.Add(-b.opts.MaxAge))
	}
	if h := l.lastTry + l.interval; house && (!ok || h < due) {
		due, ok = h, true
	}
	return max(due, l.retryAt), ok
}

// wake commits if anything is due (an idle plan writes nothing), then, as
// after every commit, starts a compaction when one is due and releases the
// pages reads have mapped. It returns an error only when the buffer is
// closed.
func (l *commitLoop) wake(ctx context.Context) error {
	b := l.b
	if due, ok := l.nextDue(); ok && due <= b.mono() {
		err := b.commitDue(b.mono() - l.interval)
		l.lastTry = b.mono()
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return fmt.Errorf("buffer run: %w", err)
			}
			b.logCommitError(err)
			l.retryAt = l.lastTry + l.interval
			return nil
		}
	}
	if l.compacting == nil && b.compactDue() {
		l.compacting = make(chan struct{})
		go func(done chan struct{}) {
			defer close(done)
			b.maybeCompact(ctx)
		}(l.compacting)
	}
	b.releaseMappedCommit()
	return nil
}

// mono is the monotonic time since the Buffer was opened: the clock of
// record deadlines, which no step of the wall clock moves.
func (b *Buffer) mono() time.Duration { return time.Since(b.epoch) }

// kickLoop wakes Run's loop, if one runs, without blocking. Caller holds mu.
func (b *Buffer) kickLoop() {
	if b.kick == nil {
		return
	}
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// commitDue is Commit for Run: it writes the unacked tail only if a record
// appended at or before dueBy is among it, and otherwise leaves the whole
// tail for a later commit.
func (b *Buffer) commitDue(dueBy time.Duration) error {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	return b.commitLocked(false, dueBy)
}

func (b *Buffer) logCommitError(err error) {
	b.mu.Lock()
	now := b.now()
	b.errsUnlogged++
	n := b.errsUnlogged
	due := now.Sub(b.lastErrLog) >= logEvery
	if due {
		b.lastErrLog = now
		b.errsUnlogged = 0
	}
	tail := b.tailLive
	b.mu.Unlock()
	if due {
		b.log.Warn("commit failed; keeping tail in memory and retrying", "err", err, "failures", n, "tail", tail)
	}
}
