package main

import (
	"bytes"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// observeAt feeds c one fix of GNSS time gnss, received when the gateway's clock read gnss+off. Tests pass times
// without a monotonic reading, so their wall time stands in for it.
func observeAt(c *clockWatch, gnss time.Time, off time.Duration) { c.observe(gnss, gnss.Add(off)) }

func TestClockWatch(t *testing.T) {
	var logs bytes.Buffer
	c := &clockWatch{log: slog.New(slog.NewTextHandler(&logs, nil))}
	s := time.Second
	steps := []struct {
		at  time.Duration // GNSS time after t0
		off time.Duration
	}{
		{0, 0}, {1 * s, 500 * time.Millisecond},
		{2 * s, 10 * s},                      // off: logged at once
		{3 * s, 10*s + 100*time.Millisecond}, // not a change
		{4 * s, 30 * s},                      // a change, within a minute of the last line: held
		{5 * s, 30 * s},
		{70 * s, 31 * s}, // a minute on: the held change goes out with the offset now
		{71 * s, 0},      // agrees again: held
		{200 * s, 0},     // and out
	}
	for _, st := range steps {
		observeAt(c, t0.Add(st.at), st.off)
	}
	out := logs.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"gateway clock is off GNSS time", "offset=10s", "suppressed=0",
		"gateway clock is off GNSS time", "offset=31s", "suppressed=0",
		"gateway clock agrees with GNSS time again", "offset=0s", "suppressed=0"}
	if len(lines) != 3 {
		t.Fatalf("logged %d lines, want 3:\n%s", len(lines), out)
	}
	for i, w := range want {
		if !strings.Contains(lines[i/3], w) {
			t.Errorf("line %d lacks %q:\n%s", i/3+1, w, out)
		}
	}
	if got := c.skewed.Load(); got != 5 {
		t.Errorf("skewed fixes = %d, want 5", got)
	}
	if got := c.changes.Load(); got != 3 {
		t.Errorf("offset changes = %d, want 3", got)
	}
}

// TestClockWatchFlood is the field report: a receiver replaying its backlog moves the offset by more than 2 s on
// every epoch; 6,668 log lines in 90 s. At most one line a minute, and every change still counted.
func TestClockWatchFlood(t *testing.T) {
	var logs bytes.Buffer
	c := &clockWatch{log: slog.New(slog.NewTextHandler(&logs, nil))}
	const n = 6668
	step := 90 * time.Second / n
	rx := t0
	for i := range n {
		rx = t0.Add(time.Duration(i) * step)
		off := time.Hour - time.Duration(i)*2500*time.Millisecond // an hour behind, catching up 2.5 s an epoch
		c.observe(rx.Add(-off), rx)
	}
	rx = rx.Add(time.Minute) // replay done: GNSS time is now
	c.observe(rx, rx)

	out := logs.String()
	off, agrees := strings.Count(out, "gateway clock is off GNSS time"), strings.Count(out, "agrees with GNSS time again")
	if off != 2 || agrees != 1 {
		t.Errorf("logged %d off and %d agree lines in 150 s, want 2 and 1 (at most one a minute):\n%s", off, agrees, out)
	}
	if got := c.changes.Load(); got != n+1 {
		t.Errorf("offset changes counted = %d, want %d", got, n+1)
	}
	lines := uint64(0)
	for _, m := range regexp.MustCompile(`suppressed=(\d+)`).FindAllStringSubmatch(out, -1) {
		k, _ := strconv.ParseUint(m[1], 10, 64)
		lines += k + 1
	}
	if lines != n+1 {
		t.Errorf("the lines stand for %d changes (each line's suppressed + 1), want %d:\n%s", lines, n+1, out)
	}
}
