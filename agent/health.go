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
type health struct{}

// check returns "" when every part shows signs of work, or what is stuck.
func (h *health) check(p *pipeline, now time.Time) string {
	// The receiver: its loop steps at least every read timeout while the device is open, and at every reopen try
	// while it is missing. A silent or unplugged receiver is reported by the receiver itself; restarting the
	// agent would not bring it back, and would hold up the backlog.
	beat := p.rx.Heartbeat()
	if beat.IsZero() {
		beat = p.started
	}
	if d := now.Sub(beat); d > stuckAfter {
		return fmt.Sprintf("receiver: its read loop has not moved for %s", d.Round(time.Second))
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
