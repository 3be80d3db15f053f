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
// nil, or the final commit's error. It commits every 9/10 of
// Options.CommitInterval, but only records appended at least 1/10 of it
// earlier (the ack grace): a record the uplink acks within the grace is
// never written, even when it was appended just before a tick, and none
// waits longer than CommitInterval to be committed. A failed
// periodic commit (e.g. disk full) keeps the tail in memory, is counted in
// Stats, logged at most once a minute, and retried at the next tick. Only one
// Run may be active at a time. Call Close after Run has returned.
func (b *Buffer) Run(ctx context.Context) error {
	if err := b.lockWritable(); err != nil {
		return err
	}
	if b.running {
		b.mu.Unlock()
		return ErrRunning
	}
	b.running = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.running = false
		b.mu.Unlock()
	}()

	grace := ackGrace(b.opts.CommitInterval)
	t := time.NewTicker(b.opts.CommitInterval - grace)
	defer t.Stop()
	// A compaction copies on its own goroutine so the ticks, and with them
	// the loss window, go on; Run waits for it (ctx stops it) before returning.
	var compacting chan struct{}
	defer func() {
		if compacting != nil {
			<-compacting
		}
	}()
	for {
		select {
		case <-ctx.Done():
			if compacting != nil {
				<-compacting
				compacting = nil
			}
			if err := b.Commit(); err != nil {
				return fmt.Errorf("buffer run: final commit: %w", err)
			}
			return nil
		case <-compacting:
			compacting = nil
		case <-t.C:
			if err := b.commitGrace(grace); err != nil {
				if errors.Is(err, ErrClosed) {
					return fmt.Errorf("buffer run: %w", err)
				}
				b.logCommitError(err)
				continue
			}
			if compacting == nil && b.compactDue() {
				compacting = make(chan struct{})
				go func(done chan struct{}) {
					defer close(done)
					b.maybeCompact(ctx)
				}(compacting)
			}
			b.releaseMappedCommit()
		}
	}
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

// ackGrace is how long Run leaves a record in the tail before committing it,
// giving the uplink a chance to ack it first: a healthy uplink acks within
// tens of milliseconds, so without it every record appended just before a
// tick would be written and then deleted at the next one, two write bursts
// that a healthy uplink should never cause. Run ticks every interval - grace
// so the loss window stays one interval.
func ackGrace(interval time.Duration) time.Duration { return interval / 10 }

// commitGrace is Commit for Run: records appended less than grace ago stay
// in the tail until the next tick.
func (b *Buffer) commitGrace(grace time.Duration) error {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	return b.commitLocked(false, grace)
}
