package uplink

import (
	"fmt"
	"slices"
	"time"
)

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
)

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
// It sets l.hold when backlog records are left waiting.
func (l *loop) nextBatch(now time.Time) ([]Record, error) {
	b := newBatch(len(l.cfg.PartitionKey))
	newest, err := l.q.Newest(liveMax)
	if err != nil {
		return nil, &RetryableError{Code: "queue", Err: fmt.Errorf("read newest records: %w", err)}
	}
	for _, r := range newest {
		if r.Seq <= l.ackedMark || !l.admit(b, r) {
			break
		}
	}
	// Within the call, keep arrival order. (PutRecords does not guarantee
	// order anyway; downstream orders by the record's own seq.)
	slices.Reverse(b.recs)
	live := len(b.recs)
	l.pace.refill(now)
	l.pace.take(live, b.bytes)

	cands, candBytes, err := l.backlog(b)
	if err != nil {
		return nil, err
	}
	first := !l.startChecked
	l.startChecked = true
	if len(cands) == 0 {
		return b.recs, nil
	}
	if first {
		l.delayBackfill(now, "start-up with a backlog")
	}
	switch {
	case now.Before(l.backfillAt):
		l.hold = l.backfillAt.Sub(now)
		return b.recs, nil
	case l.callFailures > 0:
		if live == 0 {
			r := cands[0]
			l.pace.take(1, len(r.Data)+b.keyLen)
			b.add(r)
		}
		return b.recs, nil
	case live == 0:
		if ok, wait := l.pace.ready(len(cands), candBytes); !ok {
			l.hold = wait
			return b.recs, nil
		}
	}
	for _, r := range cands {
		if !l.pace.allow(len(r.Data)+b.keyLen) || !b.add(r) {
			break
		}
	}
	if len(b.recs) == 0 {
		l.hold = time.Millisecond // cannot happen with a ready pacer; never sleep forever
	}
	return b.recs, nil
}

// backlog returns the pending records not in b, oldest first, that would
// fit in b after its records, and their bytes (with partition keys).
func (l *loop) backlog(b *batch) ([]Record, int, error) {
	var (
		cands []Record
		after uint64
		n     = len(b.recs)
		bytes = b.bytes
	)
	// Bounded: skipped records (oversize, unacked, live) are few.
	for page := 0; page < 4; page++ {
		recs, err := l.q.Oldest(after, MaxRecordsPerCall)
		if err != nil {
			return nil, 0, &RetryableError{Code: "queue", Err: fmt.Errorf("read oldest records after seq %d: %w", after, err)}
		}
		for _, r := range recs {
			if b.has(r.Seq) || l.skip(r) {
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
func (l *loop) delayBackfill(now time.Time, why string) {
	d := l.randN(l.cfg.BackfillDelay)
	l.backfillAt = now.Add(d)
	if d > 0 {
		l.log.Info("uplink: backfill delayed to spread the fleet's load", "after", why, "delay", d.Round(time.Millisecond))
	}
}

// admit adds r to b unless it must be skipped; it reports false when b is
// full.
func (l *loop) admit(b *batch, r Record) bool {
	if l.skip(r) {
		return true
	}
	return b.add(r)
}

// skip reports whether r must not be sent: already stored (ack owed), or
// too large ever to be accepted (counted and logged the first time).
func (l *loop) skip(r Record) bool {
	if _, ok := l.unacked[r.Seq]; ok {
		return true
	}
	if _, ok := l.oversize[r.Seq]; ok {
		return true
	}
	if len(r.Data)+len(l.cfg.PartitionKey) > MaxRecordBytes {
		l.oversize[r.Seq] = struct{}{}
		l.stats.oversize()
		l.log.Error("uplink: record too large for kinesis, skipped", "seq", r.Seq,
			"bytes", len(r.Data), "limit", MaxRecordBytes)
		return true
	}
	return false
}
