package main

import (
	"fmt"
	"time"

	"github.com/fleetedge/gps-agent/uplink"
)

// rxStuckAfter is how long the receiver's read loop may show no step before the agent stops feeding systemd's
// watchdog, so that systemd restarts it. The loop steps at least every read timeout (100 ms) while the device is
// open, and at every reopen try (at most 10 s apart) while it is missing; no config key stretches either.
const rxStuckAfter = 2 * time.Minute

// uplinkLateBy is how far past its due time (Stats.NextAttempt plus the longest call) the uplink's loop may be
// before it counts as stuck: timers firing late on a loaded CPU, a slow flash commit under an Ack.
const uplinkLateBy = time.Minute

// checkHealth returns "" when every part shows signs of work or is waiting for a reason it knows, or what is stuck.
func checkHealth(p *pipeline, now time.Time) string {
	// A silent or unplugged receiver is reported by the receiver itself; restarting the agent would not bring it
	// back, and would hold up the backlog. Only a read loop that stopped stepping is stuck.
	beat := p.rx.Heartbeat()
	if beat.IsZero() {
		beat = p.started
	}
	if d := now.Sub(beat); d > rxStuckAfter {
		return fmt.Sprintf("receiver: its read loop has not moved for %s", d.Round(time.Second))
	}
	return uplinkStuck(p.up.Stats(), p.buf.Stats().Pending, now)
}

// uplinkStuck judges the uplink against what it says it is waiting for, not against a fixed period: a linger of
// 5 minutes, a back-off of an hour, a backfill delayed by an hour or paced to a trickle are waits the uplink
// knows the end of (NextAttempt), and every key Validate accepts is covered. Stuck means past that end, plus
// the longest call, by uplinkLateBy, with fixes pending.
func uplinkStuck(up uplink.Stats, pending int, now time.Time) string {
	if pending == 0 || up.NextAttempt.IsZero() {
		return "" // nothing to send, or waiting for new records (each one wakes it)
	}
	if late := now.Sub(up.NextAttempt.Add(uplink.MaxCallTime)); late > uplinkLateBy {
		return fmt.Sprintf("uplink: its loop is %s past its next attempt and the longest call, with fixes pending",
			late.Round(time.Second))
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
