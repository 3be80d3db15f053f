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

// clockWatch compares the gateway clock with GNSS time on every fix. It logs when the offset goes beyond
// maxClockOffset, when it changes by more than that while beyond, and when it is back within; it counts the fixes
// received with the clock off.
type clockWatch struct {
	log    *slog.Logger
	off    bool          // the offset was beyond maxClockOffset at the last fix
	logged time.Duration // the offset last logged
	skewed atomic.Uint64 // fixes received while the clock was off
	offset atomic.Int64  // the latest offset (gateway - GNSS), nanoseconds
}

func (c *clockWatch) observe(gnss, gateway time.Time) {
	d := gateway.Sub(gnss)
	c.offset.Store(int64(d))
	bad := d > maxClockOffset || d < -maxClockOffset
	switch {
	case bad && (!c.off || absDuration(d-c.logged) > maxClockOffset):
		c.log.Warn("gateway clock is off GNSS time", "offset", d.Round(time.Millisecond), "hint", "check NTP; records keep GNSS time in ts")
		c.logged = d
	case !bad && c.off:
		c.log.Info("gateway clock agrees with GNSS time again", "offset", d.Round(time.Millisecond))
	}
	c.off = bad
	if bad {
		c.skewed.Add(1)
	}
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
