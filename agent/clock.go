package main

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// maxClockOffset is how far the gateway clock may be from GNSS time before it is reported. Gateways often boot
// without NTP; nothing in the agent depends on the wall clock (seq and order never do), but `rx` in the records
// and log times do, and a technician should know.
const maxClockOffset = 2 * time.Second

// clockLogEvery is the most often the clock is logged about. A receiver replaying its backlog moves the offset on
// every epoch (6,668 lines in 90 s in the field); a line a minute still tells the story, and the counters count
// every change.
const clockLogEvery = time.Minute

// clockWatch compares the gateway clock with GNSS time on every fix. A change is the offset going beyond
// maxClockOffset, moving by more than that while beyond, or coming back within; every change is counted, and
// logged at most once per clockLogEvery: the line gives the offset at that moment and how many changes it stands
// for. It also counts the fixes received with the clock off.
type clockWatch struct {
	log     *slog.Logger
	off     bool          // the offset was beyond maxClockOffset at the last change
	at      time.Duration // the offset at the last change
	lines   logLimit      // changes not logged yet
	changes atomic.Uint64 // changes, logged or not
	skewed  atomic.Uint64 // fixes received while the clock was off
	offset  atomic.Int64  // the latest offset (gateway - GNSS), nanoseconds
}

// observe compares a fix's GNSS time with now, when it was received (time.Now: its wall reading gives the offset,
// its monotonic reading paces the log lines).
func (c *clockWatch) observe(gnss, now time.Time) {
	d := now.Sub(gnss)
	c.offset.Store(int64(d))
	bad := d > maxClockOffset || d < -maxClockOffset
	if bad {
		c.skewed.Add(1)
	}
	if bad != c.off || (bad && absDuration(d-c.at) > maxClockOffset) {
		c.off, c.at = bad, d
		c.changes.Add(1)
		c.lines.note()
	}
	n, ok := c.lines.due(now, clockLogEvery)
	switch {
	case !ok:
	case c.off:
		c.log.Warn("gateway clock is off GNSS time", "offset", d.Round(time.Millisecond), "suppressed", n-1,
			"hint", "check NTP; records keep GNSS time in ts")
	default:
		c.log.Info("gateway clock agrees with GNSS time again", "offset", d.Round(time.Millisecond), "suppressed", n-1)
	}
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
