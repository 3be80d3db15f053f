package uplink

import "time"

// Per-shard write limits: "Each shard can support writes up to 1,000
// records per second, up to a maximum data write total of 1 MiB per second"
// (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html).
// One partition key always maps to one shard, so these bound one truck, and
// every other truck on the same shard shares them.
const (
	shardRecordsPerSecond = 1000
	shardBytesPerSecond   = 1 << 20
)

// Pacing constants.
const (
	// paceBurst is how many seconds of tokens the bucket holds. One second
	// at the default share is 500 records: one full PutRecords call, so the
	// backfill goes in full calls (fewest headers per record) at the paced
	// average rate.
	paceBurst = 1.0
	// paceMinFactor is the floor of the pace after repeated throttling: 1/16
	// of the share (~31 records/s at the default) still drains a day's
	// backlog in under an hour.
	paceMinFactor = 1.0 / 16
	// paceRecoverPerSecond is how fast the pace climbs back after a cut: a
	// halved pace is whole again 10 s after the last throttle.
	paceRecoverPerSecond = 0.05
	// paceCutEvery allows one halving per interval: one throttled call
	// usually fails many records at once, which is one signal, not many.
	paceCutEvery = time.Second
)

// pacer is a token bucket over records and bytes for the backlog part of
// each call. Live records take tokens too (the bucket may go into debt), so
// the total stays within the share, but they never wait for them.
type pacer struct {
	recRate, byteRate float64 // tokens per second at factor 1
	factor            float64 // share of the rate in force, cut on throttling
	recs, bytes       float64 // tokens; may be negative (debt)
	last              time.Time
	lastCut           time.Time
}

func newPacer(share float64) *pacer {
	return &pacer{
		recRate:  share * shardRecordsPerSecond,
		byteRate: share * shardBytesPerSecond,
		factor:   1,
	}
}

// The bucket holds paceBurst seconds at the pace in force, so a cut pace
// also means smaller calls: a throttled shard takes a smaller burst.
func (p *pacer) recCap() float64  { return max(1, p.recRate*p.factor*paceBurst) }
func (p *pacer) byteCap() float64 { return max(1, p.byteRate*p.factor*paceBurst) }

// start fills the bucket.
func (p *pacer) start(now time.Time) {
	p.factor = 1
	p.recs, p.bytes, p.last = p.recCap(), p.byteCap(), now
}

// refill adds the tokens earned since the last refill and lets a cut pace
// recover.
func (p *pacer) refill(now time.Time) {
	dt := now.Sub(p.last).Seconds()
	if dt <= 0 {
		return
	}
	p.last = now
	// Recover first, so that a full bucket is full at the new cap: ready
	// must not chase a cap that grows after every refill.
	p.factor = min(1, p.factor+dt*paceRecoverPerSecond)
	p.recs = min(p.recCap(), p.recs+dt*p.recRate*p.factor)
	p.bytes = min(p.byteCap(), p.bytes+dt*p.byteRate*p.factor)
}

// take spends tokens for records that are sent anyway (live records).
func (p *pacer) take(recs, bytes int) {
	p.recs -= float64(recs)
	p.bytes -= float64(bytes)
}

// allow spends the tokens of one backlog record of n bytes if the bucket
// has them. A record larger than what is left may overdraw the byte tokens
// as long as some are left, so that a record larger than the bucket can
// still go.
func (p *pacer) allow(n int) bool {
	if p.recs < 1 || p.bytes <= 0 {
		return false
	}
	p.take(1, n)
	return true
}

// ready reports whether the bucket holds enough for a worthwhile backfill
// call of recs records and bytes bytes (or a full bucket), and if not, how
// long until it does.
func (p *pacer) ready(recs, bytes int) (bool, time.Duration) {
	needR := min(float64(recs), p.recCap())
	needB := min(float64(bytes), p.byteCap())
	const eps = 1e-6 // float rounding must not leave a full bucket "not ready"
	if p.recs >= needR-eps && p.bytes >= needB-eps {
		return true, 0
	}
	wait := max((needR-p.recs)/(p.recRate*p.factor), (needB-p.bytes)/(p.byteRate*p.factor))
	// Round up so that the wake-up finds the tokens there.
	return false, time.Duration(wait*float64(time.Second)) + time.Millisecond
}

// throttled halves the pace, at most once per paceCutEvery.
func (p *pacer) throttled(now time.Time) {
	if !p.lastCut.IsZero() && now.Sub(p.lastCut) < paceCutEvery {
		return
	}
	p.refill(now)
	p.lastCut = now
	p.factor = max(paceMinFactor, p.factor/2)
}

// rate returns the backlog pace in force, in records per second.
func (p *pacer) rate() float64 { return p.recRate * p.factor }
