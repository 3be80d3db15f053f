package main

// The producer of health rows (health_record.go): it judges the receiver once a second and hands a row to the
// uplink every health_interval and on each change of the receiver's state. The uplink sends it between its own
// calls (uplink.PutAside): not kept on flash, an unsent row replaced by the next.

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

// changeEvery is the least time between two change rows: a receiver whose state flaps (a loose connector, a
// tunnel exit) sends one change row per 10 s carrying its latest state, not one per flap.
const changeEvery = 10 * time.Second

// defaultHealthInterval is [kinesis] health_interval's default: 1,440 rows a day per truck, and a dashboard sees a
// gateway that stopped talking within two intervals. minHealthInterval is its floor: a row is judged once a second.
const (
	defaultHealthInterval = time.Minute
	minHealthInterval     = time.Second
)

// healthPoll is how often the receiver is judged: a change is seen within a second of the receiver's own
// ten-second silence or no-fix threshold.
const healthPoll = time.Second

// healthRows makes the health rows of a running agent. Create it with newHealthRows; run it with Run.
type healthRows struct {
	truckID  string
	interval time.Duration
	boot     string
	started  time.Time
	poll     time.Duration

	// put hands a row to the uplink; gather reads the parts' counters; link and sentences read the receiver.
	put       func(data []byte)
	gather    func(now time.Time) healthInputs
	link      func() nmea.LinkState
	sentences func() uint64
	now       func() time.Time // time.Now outside tests

	lastFix atomic.Pointer[fixSeen] // set by the receiver's OnFix
}

// sawFix notes a fix the receiver decoded: its GNSS time and when it arrived. Safe from any goroutine.
func (h *healthRows) sawFix(gnss, at time.Time) { h.lastFix.Store(&fixSeen{gnss: gnss, at: at}) }

// rowsLoop is the state of one Run.
type rowsLoop struct {
	seq          uint64
	sent         string    // receiver state in the last row handed over; "" before the first
	why          string    // and its error
	lastRow      time.Time // when the last row was handed over
	lastChange   time.Time // when the last change row was handed over
	wasOpen      bool
	openedAt     time.Time // when the device was last seen to open (the poll's monotonic clock)
	sentenceN    uint64
	lastSentence time.Time
}

// Run hands rows over until ctx ends. The first row waits until the receiver's state is known (at most the
// silence time after the device opens), so that a gateway's start row does not report a receiver still opening.
func (h *healthRows) Run(ctx context.Context) error {
	t := time.NewTicker(h.poll)
	defer t.Stop()
	l := &rowsLoop{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			h.step(l, h.now())
		}
	}
}

// step judges the receiver at now and hands a row over if one is due.
func (h *healthRows) step(l *rowsLoop, now time.Time) {
	state, why := h.judge(l, now)
	reason := ""
	switch {
	case l.sent == "":
		if state != "" {
			reason = healthStart
		}
	case state == "":
		// Undecided (the device just reopened): no change yet; an interval row repeats the last state.
		state, why = l.sent, l.why
		if now.Sub(l.lastRow) >= h.interval {
			reason = healthInterval
		}
	case state != l.sent:
		if now.Sub(l.lastChange) >= changeEvery {
			reason = healthChange
			l.lastChange = now
		}
	case now.Sub(l.lastRow) >= h.interval:
		reason = healthInterval
	}
	if reason == "" {
		return
	}
	l.seq++
	in := h.gather(now)
	in.now, in.fix, in.receiver, in.receiverError = now, h.lastFix.Load(), state, why
	h.put(buildHealthRow(h.truckID, h.boot, l.seq, reason, in).encode())
	l.sent, l.why, l.lastRow = state, why, now
}

// judge returns the receiver's state at now, and the link's error when it is unavailable.
func (h *healthRows) judge(l *rowsLoop, now time.Time) (state, why string) {
	link := h.link()
	open := link.State == nmea.LinkOpen
	if open && !l.wasOpen {
		l.openedAt = now
	}
	l.wasOpen = open
	if n := h.sentences(); n != l.sentenceN {
		l.sentenceN, l.lastSentence = n, now
	}
	// Only what arrived since the last open counts: a receiver that just reopened has its own ten seconds.
	since := func(t time.Time) time.Duration {
		if t.IsZero() || t.Before(l.openedAt) {
			return -1
		}
		return now.Sub(t)
	}
	var fixAt time.Time
	if f := h.lastFix.Load(); f != nil {
		fixAt = f.at
	}
	state = receiverState(link.State, now.Sub(l.openedAt), since(l.lastSentence), since(fixAt))
	if state == rxUnavailable {
		why = link.LastError
	}
	return state, why
}

// newHealthRows is the daemon's producer: rows about p's parts, put aside on p's uplink to cfg's health stream.
func (p *pipeline) newHealthRows(cfg Config) *healthRows {
	return &healthRows{
		truckID:  cfg.TruckID,
		interval: cfg.Kinesis.HealthInterval.Duration,
		boot:     newBootID(),
		started:  p.started,
		poll:     healthPoll,
		put: func(data []byte) {
			p.up.PutAside(cfg.Kinesis.HealthStream, cfg.TruckID, data)
		},
		gather:    p.healthInputs,
		link:      p.rx.Link,
		sentences: func() uint64 { return p.rxCounters.Snapshot().Sentences },
		now:       time.Now,
	}
}

// healthInputs gathers a row's counters from the running parts (the receiver's state is judged by the producer).
func (p *pipeline) healthInputs(now time.Time) healthInputs {
	rx, b, u := p.rxCounters.Snapshot(), p.buf.Stats(), p.up.Stats()
	var filtered uint64
	p.filter.eachDropped(func(_ string, n uint64) { filtered += n })
	return healthInputs{
		sentences: rx.Sentences, fixes: rx.Fixes,
		pending: b.Pending, oldestPending: b.OldestAppended,
		dropped: b.DroppedMaxBytes + b.DroppedMaxAge, lost: p.appendErrors.Load(), filtered: filtered,
		bytesSent: u.BytesSent, bytesReceived: u.BytesReceived,
		uptime: now.Sub(p.started),
	}
}
