package main

import (
	"fmt"
	"time"
)

// stuckAfter is how long a part may show no sign of work before the agent stops feeding systemd's watchdog, so
// that systemd restarts it. Longer than the uplink's longest back-off (30 s) plus its longest call (60 s), and than
// the receiver's longest reopen back-off (10 s), so that a waiting part is never taken for a stuck one.
const stuckAfter = 2 * time.Minute

// health tells a stuck pipeline from a waiting one.
type health struct {
	rxMark   uint64    // the receiver's activity count at rxChange
	rxChange time.Time // when it last changed
}

// check returns "" when every part shows signs of work, or what is stuck.
func (h *health) check(p *pipeline, now time.Time) string {
	if h.rxChange.IsZero() {
		h.rxChange = now
	}
	// The receiver: any byte counted, sentence read or reopen tried is work.
	rx := p.rxCounters.Snapshot()
	if mark := rx.Sentences + rx.GarbageBytes + rx.BadChecksum + rx.Reconnects; mark != h.rxMark {
		h.rxMark, h.rxChange = mark, now
	}
	if d := now.Sub(h.rxChange); d > stuckAfter {
		return fmt.Sprintf("receiver: nothing read for %s", d.Round(time.Second))
	}
	// The uplink: nothing to send, or a call that ended (stored or failed) recently.
	if p.buf.Stats().Pending == 0 {
		return ""
	}
	up := p.up.Stats()
	last := up.LastSuccess
	if up.LastErrorTime.After(last) {
		last = up.LastErrorTime
	}
	if last.IsZero() {
		last = p.started
	}
	if d := now.Sub(last); d > stuckAfter {
		return fmt.Sprintf("uplink: no call ended for %s with fixes pending", d.Round(time.Second))
	}
	return ""
}

// summary is the one-line STATUS= systemd shows in `systemctl status`.
func (s Status) summary() string {
	line := fmt.Sprintf("%d fixes sent, %d pending", s.Uplink.RecordsAcked, s.Buffer.Pending)
	if !s.Buffer.OldestAppended.IsZero() {
		line += fmt.Sprintf(" (oldest %s)", time.Since(s.Buffer.OldestAppended).Round(time.Second))
	}
	if s.Uplink.LastError != "" && s.Uplink.LastErrorTime.After(s.Uplink.LastSuccess) {
		line += "; uplink failing"
	}
	return line
}
