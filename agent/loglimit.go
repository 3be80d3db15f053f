package main

import "time"

// logLimit lets at most one log line through per interval for a kind of event that can come in floods (a receiver
// replaying its backlog changes the clock offset on every epoch). Events are noted as they happen; a line goes out
// when one is due and stands for every event noted since the last line. Counters elsewhere still count every event.
// Not safe for concurrent use.
type logLimit struct {
	last    time.Time // when the last line went out; zero: none yet
	pending uint64    // events noted since then
}

// note records an event to report.
func (l *logLimit) note() { l.pending++ }

// due reports whether a line should go out at now, every after the last one, and how many events it stands for.
// now should come from time.Now (its monotonic reading makes the interval immune to wall-clock steps).
func (l *logLimit) due(now time.Time, every time.Duration) (events uint64, ok bool) {
	if l.pending == 0 || (!l.last.IsZero() && now.Sub(l.last) < every) {
		return 0, false
	}
	events, l.pending, l.last = l.pending, 0, now
	return events, true
}
