package uplink

import (
	"encoding/base64"
	"fmt"
	"slices"
	"time"
)

// Backfill scheduling.
const (
	// liveWindow is how recently a record must have been queued to count
	// as live (plus Config.Linger, which holds records back on purpose):
	// after an outage, what was recorded in the last ten seconds is where
	// the truck is now, and goes out at once, newest first; anything older
	// is backlog, sent oldest first and paced. Measured on the monotonic
	// clock from Record.Queued; a record from a previous run is never live.
	// Ten seconds also bounds the burst a fleet's trucks send at once when
	// a depot's link returns (ten fixes each at 1 Hz).
	liveWindow = 10 * time.Second
	// liveLook is how many of the newest records are read first to find
	// the live ones: at 1 Hz, a window holds ten. More are read only if
	// all of these are live.
	liveLook = 16
	// outageCalls is the streak of failed calls (no reply, or an error
	// reply) taken for an outage, after which the backfill is delayed:
	// one or two lost calls are routine on a cellular link.
	outageCalls = 3
)

// nextBatch chooses the records of the next call.
//
// Live first: the records queued within the live window go first and at
// once, so that after an outage the dashboard gets the truck's position
// now; if there are more than a call holds, the newest go. While the link
// is down, a call is a probe and carries the newest record only: a dead
// link is never fed a batch. The capacity left is filled with the backlog,
// oldest first, up to what the link uploads in backfillCallTime, as far as
// the pacer allows, and not before the backfill delay after start-up or an
// outage. With no live record, a backfill call waits until the pacer holds
// that call's worth, so the backlog goes in calls of one size.
//
// It sets l.hold when backlog records are left waiting.
func (l *loop) nextBatch(now time.Time) ([]Record, error) {
	b := newBatch(len(l.cfg.PartitionKey))
	if l.offline {
		return l.probe(b)
	}
	live, err := l.live(now)
	if err != nil {
		return nil, err
	}
	for _, r := range live {
		if !l.admit(b, r) {
			break
		}
	}
	// Within the call, keep arrival order. (PutRecords does not guarantee
	// order anyway; downstream orders by the record's own seq.)
	slices.Reverse(b.recs)
	nLive, liveSent := len(b.recs), requestBytes(l.cfg.Stream, l.cfg.PartitionKey, b.recs)
	l.lastLive = nLive
	liveWire := liveSent - requestBytes(l.cfg.Stream, l.cfg.PartitionKey, nil)
	l.pace.refill(now)

	cands, candBytes, err := l.backlog(b, max(0, l.meter.callBytes()-liveWire), nLive == 0)
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
	case nLive > 0 && l.meter.needFloor(now) && liveSent <= smallCallBytes:
		// The live fixes go alone and measure the link's floor; the
		// backlog follows in the next call.
		return b.recs, nil
	}
	// The backlog goes when the pacer holds a call's worth, live fixes or
	// not: a backfill that rode with the live fixes would go on every
	// truck's GPS second, and a fleet's calls would reach the shard in
	// the same instant, in the same order each second, so that the first
	// trucks never heard a throttle and doubled their pace while the last
	// ones took every throttle (issue 15: 15 % of records throttled with
	// real agents, 8 % with receivers spread over the second). Waiting for
	// the bucket spreads each truck's backfill over the second by when its
	// backfill delay ended.
	if ok, wait := l.pace.ready(len(cands), candBytes); !ok {
		l.hold = wait
		return b.recs, nil
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

// live returns the pending records queued within the live window, newest
// first.
func (l *loop) live(now time.Time) ([]Record, error) {
	window := liveWindow + l.cfg.Linger
	for n := liveLook; ; n *= 8 {
		newest, err := l.q.Newest(min(n, MaxRecordsPerCall))
		if err != nil {
			return nil, &RetryableError{Code: "queue", Err: fmt.Errorf("read newest records: %w", err)}
		}
		for i, r := range newest {
			if r.Queued.IsZero() || now.Sub(r.Queued) >= window {
				return newest[:i], nil
			}
		}
		if len(newest) < n || n >= MaxRecordsPerCall {
			return newest, nil
		}
	}
}

// probe fills b with the newest record that can be sent: while the link is
// down, a call only asks whether it is back, at the cost of one record.
func (l *loop) probe(b *batch) ([]Record, error) {
	newest, err := l.q.Newest(liveLook)
	if err != nil {
		return nil, &RetryableError{Code: "queue", Err: fmt.Errorf("read newest records: %w", err)}
	}
	for _, r := range newest {
		if !l.skip(r) {
			b.add(r)
			break
		}
	}
	return b.recs, nil
}

// backlog returns the pending records not in b, oldest first, that would
// fit in b after its records and within wire request bytes (at least one
// record if one is true), and their bytes (with partition keys).
func (l *loop) backlog(b *batch, wire int, one bool) ([]Record, int, error) {
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
			w := requestEntryBytes + base64.StdEncoding.EncodedLen(len(r.Data)) + b.keyLen
			if n >= MaxRecordsPerCall || bytes+size > MaxCallBytes || (w > wire && !(one && len(cands) == 0)) {
				return cands, bytes - b.bytes, nil
			}
			wire -= w
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
// BackfillDelay], and restarts the pacer's slow start from then: the
// fleet may be returning with it.
func (l *loop) delayBackfill(now time.Time, why string) {
	d := l.randN(l.cfg.BackfillDelay)
	l.backfillAt = now.Add(d)
	l.pace.start(l.backfillAt)
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
