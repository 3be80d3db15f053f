package main

import "time"

// GNSS time is what the filter measures everything by, and a receiver's time can be wrong for one epoch (a
// corrupted RMC date still passes the 8-bit XOR checksum) or move for good (a receiver that corrects a wrong date
// after a cold start, a gateway resumed from suspend). No single epoch may decide which: a jump is believed once
// jumpAgree epochs in a row agree with it.

// jumpAgree is how many consecutive epochs must agree before a jump in GNSS time is believed. Three: one epoch can
// be corrupted, two corrupted the same way in a row is beyond what a line glitch does, and a truck that really
// jumped (parked for a week with the gateway suspended) is back after 3 epochs, 3 s at 1 Hz.
const jumpAgree = 3

// jumpSlack is how much further GNSS time may move than the receive clock did between two epochs. Epochs can reach
// the agent faster than they were measured: after a stall, the serial port's buffer hands over several at once, and
// a replayed capture arrives faster than real time. 10 s covers a burst of 0.1 Hz epochs; any date corrupted (a
// day or more) is far beyond it, and so are most corrupted times of day (a minute or more).
const jumpSlack = 10 * time.Second

// stamp is one epoch's GNSS time and when the gateway received it. rx carries Go's monotonic reading, so a step of
// the gateway's wall clock changes nothing here.
type stamp struct{ gnss, rx time.Time }

// follows reports whether b can come after a on one timeline: GNSS time moved forward, and by no more than the
// receive clock explains.
func follows(a, b stamp) bool {
	d := b.gnss.Sub(a.gnss)
	return d > 0 && d <= b.rx.Sub(a.rx)+jumpSlack
}

// clockVouches is how close to the gateway's clock an epoch must be for the clock to vouch for it when there is no
// timeline yet (at start, or after the timeline was lost). A gateway with an RTC or NTP is within a second; one
// that booted on its last shutdown time is off by hours or days, and then the epochs vouch for each other instead.
const clockVouches = time.Minute

// vouched reports whether the gateway's wall clock (rx's wall reading) agrees with s's GNSS time.
func vouched(s stamp) bool {
	d := s.gnss.Sub(s.rx.Round(0)) // Round(0) drops the monotonic reading: compare wall with GNSS time
	return d > -clockVouches && d < clockVouches
}

// timeVerdict is what a timeline makes of one epoch.
type timeVerdict int

const (
	timeOK      timeVerdict = iota // follows the timeline
	timeSuspect                    // jumped from it (or no timeline yet): held until jumpAgree epochs in a row agree
	timeJumped                     // the jumpAgree-th epoch agreeing with a jump: the jump is the timeline now
)

// timeline follows the GNSS times of consecutive epochs. It is the filter's, used only from its goroutine.
type timeline struct {
	last    stamp // the last epoch on the timeline
	started bool  // whether there is a timeline yet
	run     stamp // the last of a run of suspect epochs that follow each other
	runLen  int   // that run's length; 0: no run
}

// step judges the epoch s. With no timeline yet, the first epoch is believed when the gateway's clock vouches for
// it, and otherwise like a jump, once jumpAgree epochs agree: a corrupted date in the very first epoch after start
// must not become the timeline (the buffer ages the backlog by it).
func (t *timeline) step(s stamp) timeVerdict {
	switch {
	case t.started && follows(t.last, s), !t.started && vouched(s):
		t.last, t.started, t.runLen = s, true, 0
		return timeOK
	case t.runLen > 0 && follows(t.run, s):
		t.run = s
		t.runLen++
	default:
		t.run, t.runLen = s, 1
	}
	if t.runLen < jumpAgree {
		return timeSuspect
	}
	t.last, t.started, t.runLen = s, true, 0
	return timeJumped
}
