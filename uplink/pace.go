package uplink

import (
	"math"
	"time"
)

// Per-shard write limits: "Each shard can support writes up to 1,000
// records per second, up to a maximum data write total of 1 MiB per second"
// (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html).
// One partition key always maps to one shard, so these bound one truck, and
// every other truck on the same shard shares them.
const (
	shardRecordsPerSecond = 1000
	shardBytesPerSecond   = 1 << 20
)

// Pacing constants. The backfill pace is congestion control, as TCP's:
// a truck cannot know how many others share its shard, only hear the
// shard's throttles. It starts low and doubles each second until the
// first throttle (slow start), then climbs linearly and is cut by a
// jittered factor on each throttled call (additive increase,
// multiplicative decrease). A fleet that returns at once then shares the
// shard instead of fighting over it: 30 trucks each asking half a shard
// got 32–36 % of their records throttled with a fixed pace that was only
// halved on throttling (issue 15; 39 % in the simulation). The constants
// were chosen on the fleet simulation (fleet_test.go, 30 trucks on one
// shard, receivers on the GPS second): 5–7 % throttled, the shard 83–95 %
// busy; 30 real agents, 5–7 % and 86–90 %.
const (
	// paceBurst is how many seconds of tokens the bucket holds at the pace
	// in force, so how large a backfill call is: a quarter of a second's
	// worth, 125 records at the full default share. Calls of a whole
	// second (500 records) lost a whole second of a truck's pace each time
	// one reached a shard whose bucket a fleet had just emptied, and the
	// truck heard of it only a second later: 30 real agents had 15 % of
	// their records throttled (issue 15), 13 % in the simulation with
	// receivers on the GPS second; a quarter second, 3–5 %. A truck alone
	// drains as fast; its calls carry fewer records each, on a link that
	// takes them in any case.
	paceBurst = 0.25
	// paceStartFactor is where the pace starts, after start-up and after
	// each outage: 1/16 of the share, ~31 records/s at the default. Thirty
	// trucks returning at once (spread by the backfill delay) ask a few
	// hundred records/s of a shard that takes 1,000, not 30 full calls of
	// 500.
	paceStartFactor = 1.0 / 16
	// paceSlowStartGrowth is the slow start's growth per second without a
	// throttle, TCP's doubling: from 1/16 of the share to all of it in 4 s,
	// so a truck alone on its shard drains as fast as a fixed pace would
	// (~1 % slower over a day's backlog), and a small fleet fills its
	// shard soon after the first backfill starts (growing by half a second
	// left a 10-truck shard ~70 % busy in the simulation).
	paceSlowStartGrowth = 2.0
	// paceIncreasePerSecond is the additive increase after a throttle, as
	// a share of the pace's ceiling per second: 0.5 % (2.5 records/s per
	// second at the default share). Thirty trucks together then climb by
	// 75 records/s a second, 7.5 % of a shard; 1 % throttled ~12 % of the
	// fleet's records, as the shard's one-second burst hides the crossing
	// of its limit for a while.
	paceIncreasePerSecond = 0.005
	// paceProbeAfter ends the additive increase when no throttle has come
	// for that long: the pace then grows by paceProbeGrowth a second, as a
	// gentler slow start, so a truck whose neighbours have drained gets
	// its share back from a quarter of it in ~8 s more, rather than
	// crawling at 2.5 records/s a second while the shard idles (the last
	// trucks of a fleet left it 30–50 % busy for 20 s; issue 15), while
	// trucks on a busy shard, cut every few seconds, climb slowly where
	// the throttles are.
	paceProbeAfter  = 5 * time.Second
	paceProbeGrowth = 1.2
	// paceCutMin and paceCutMax bound the jittered multiplicative
	// decrease: the pace is multiplied by a uniform draw from [0.5, 0.7]
	// (0.6 on average). The jitter keeps trucks cut at the same instant
	// from climbing back in lockstep.
	paceCutMin = 0.5
	paceCutMax = 0.7
	// paceMinRate is the floor of the pace in records/s: one record a
	// second still moves the backlog, and 1,000 trucks at the floor are
	// what one shard takes. No larger floor: 30 trucks at a floor of 1/16
	// of the share (31 records/s) already filled a shard.
	paceMinRate = 1.0
	// paceCutEvery allows one cut per interval: one throttled call
	// usually fails many records at once, which is one signal, not many.
	paceCutEvery = time.Second
)

// pacer is a token bucket over records and bytes for the backlog part of
// each call, its rate set by congestion control. Live records take no
// tokens: they go at once whatever the pace (a truck's own live fixes are
// a record a second), and when throttled are retried within a second.
type pacer struct {
	recRate, byteRate float64 // tokens per second at factor 1 (the share)
	factor            float64 // share of the rate in force
	slowStart         bool    // no throttle since start: grow exponentially
	recs, bytes       float64 // tokens
	last              time.Time
	lastCut           time.Time
	jitter            func() float64 // uniform in [0, 1]
}

// newPacer returns a pacer for share of a shard, drawing its jitter from
// randN (uniform in [0, max]; the Uplink's, which tests seed).
func newPacer(share float64, randN func(max time.Duration) time.Duration) *pacer {
	const steps = 1 << 20
	return &pacer{
		recRate:  share * shardRecordsPerSecond,
		byteRate: share * shardBytesPerSecond,
		factor:   1,
		jitter:   func() float64 { return float64(randN(steps)) / steps },
	}
}

// The bucket holds paceBurst seconds at the pace in force, so a cut pace
// also means smaller calls: a throttled shard takes a smaller burst.
func (p *pacer) recCap() float64  { return max(1, p.recRate*p.factor*paceBurst) }
func (p *pacer) byteCap() float64 { return max(1, p.byteRate*p.factor*paceBurst) }

// minFactor is the floor of factor: paceMinRate.
func (p *pacer) minFactor() float64 { return min(1, paceMinRate/p.recRate) }

// start restarts slow start: after start-up and after an outage, when a
// fleet may be returning at once. The bucket starts full at the low pace.
func (p *pacer) start(now time.Time) {
	p.factor = max(p.minFactor(), paceStartFactor)
	p.slowStart = true
	p.lastCut = time.Time{}
	p.recs, p.bytes, p.last = p.recCap(), p.byteCap(), now
}

// refill adds the tokens earned since the last refill and grows the pace:
// exponentially in slow start, linearly after a throttle, and again
// exponentially (more gently) once no throttle has come for a while.
func (p *pacer) refill(now time.Time) {
	dt := now.Sub(p.last).Seconds()
	if dt <= 0 {
		return
	}
	p.last = now
	// Grow first, so that a full bucket is full at the new cap: ready
	// must not chase a cap that grows after every refill.
	switch {
	case p.slowStart:
		p.factor = min(1, p.factor*math.Pow(paceSlowStartGrowth, dt))
	case now.Sub(p.lastCut) >= paceProbeAfter:
		p.factor = min(1, p.factor*math.Pow(paceProbeGrowth, dt))
	default:
		p.factor = min(1, p.factor+dt*paceIncreasePerSecond)
	}
	p.recs = min(p.recCap(), p.recs+dt*p.recRate*p.factor)
	p.bytes = min(p.byteCap(), p.bytes+dt*p.byteRate*p.factor)
}

// allow spends the tokens of one backlog record of n bytes if the bucket
// has them. A record larger than what is left may overdraw the byte tokens
// as long as some are left, so that a record larger than the bucket can
// still go.
func (p *pacer) allow(n int) bool {
	if p.recs < 1 || p.bytes <= 0 {
		return false
	}
	p.recs--
	p.bytes -= float64(n)
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
	// Round up so that the wake-up finds the tokens there, by no more:
	// what a full bucket earns meanwhile is lost, and with four calls a
	// second a millisecond each cost a truck alone 0.4 % of its share.
	return false, time.Duration(math.Ceil(wait * float64(time.Second)))
}

// throttled cuts the pace by a jittered factor, at most once per
// paceCutEvery, and ends slow start. The bucket is emptied: the shard is
// full now, and the next backfill call waits for a call's worth at the
// new pace rather than following the throttled one at once.
func (p *pacer) throttled(now time.Time) {
	if !p.lastCut.IsZero() && now.Sub(p.lastCut) < paceCutEvery {
		return
	}
	p.refill(now)
	p.lastCut = now
	p.slowStart = false
	cut := paceCutMin + (paceCutMax-paceCutMin)*p.jitter()
	p.factor = max(p.minFactor(), p.factor*cut)
	p.recs, p.bytes = 0, 0
}

// rate returns the backlog pace in force, in records per second.
func (p *pacer) rate() float64 { return p.recRate * p.factor }
