package nmea

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ptyAt opens a pty whose slave is linked at link, closed on cleanup.
func ptyAt(t *testing.T, link string) (master *os.File, closeFn func() error) {
	t.Helper()
	m, _, closeFn, err := OpenPTY(link)
	if err != nil {
		t.Skipf("no pty here: %v", err)
	}
	t.Cleanup(func() { closeFn() })
	return m, closeFn
}

// startReceiver runs r until the test ends and checks that Run returns
// ctx's error.
func startReceiver(t *testing.T, ctx context.Context, r *Receiver) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Run = %v, want the context's error", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5 s of cancel")
		}
	})
}

// fixChan returns an OnFix that sends to a buffered channel.
func fixChan() (func(Fix), chan Fix) {
	ch := make(chan Fix, 1000)
	return func(f Fix) {
		select {
		case ch <- f:
		default:
		}
	}, ch
}

// waitFix waits for a fix at time want, failing at ctx's end.
func waitFix(ctx context.Context, t *testing.T, ch chan Fix, want time.Time) Fix {
	t.Helper()
	for {
		select {
		case f := <-ch:
			if f.Time.Equal(want) {
				return f
			}
		case <-ctx.Done():
			t.Fatalf("no fix for %v: %v", want, ctx.Err())
		}
	}
}

var simStart = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// TestReceiverReconnect: the device vanishes (pty closed, symlink gone) and
// comes back at the same path; the same Run reopens it and goes on.
func TestReceiverReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	link := filepath.Join(t.TempDir(), "gps0")
	m1, close1 := ptyAt(t, link)
	rec := newLogRecorder()
	c := new(Counters)
	onFix, fixes := fixChan()
	r := &Receiver{Device: link, Baud: 9600, OnFix: onFix, Log: slog.New(rec), Counters: c}
	startReceiver(t, ctx, r)

	sim := &Simulator{Seed: 2, Start: simStart}
	for i := 0; i < 2; i++ {
		if _, err := m1.Write(sim.Epoch(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFix(ctx, t, fixes, sim.Fix(1).Time) // the last one, by the idle flush
	if err := close1(); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(ctx, t, "receiver unavailable, retrying")

	m2, _ := ptyAt(t, link)
	for i := 10; i < 12; i++ {
		if _, err := m2.Write(sim.Epoch(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFix(ctx, t, fixes, sim.Fix(11).Time)
	if s := c.Snapshot(); s.Reconnects != 1 {
		t.Errorf("reconnects = %d, want 1", s.Reconnects)
	}
	if b := r.CurrentBaud(); b != 9600 {
		t.Errorf("CurrentBaud = %d, want 9600", b)
	}
}

// TestReceiverSilence: an open receiver that sends nothing is reported once
// per episode; garbage does not end the episode, a valid sentence does.
func TestReceiverSilence(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	link := filepath.Join(t.TempDir(), "gps0")
	m, _ := ptyAt(t, link)
	rec := newLogRecorder()
	c := new(Counters)
	r := &Receiver{Device: link, Baud: 9600, Log: slog.New(rec), Counters: c,
		SilenceAfter: 300 * time.Millisecond, SummaryEvery: 200 * time.Millisecond}
	startReceiver(t, ctx, r)

	rec.waitFor(ctx, t, "receiver silent: no valid sentence")
	if s := c.Snapshot(); s.Silences != 1 || !s.LastSentence.IsZero() {
		t.Fatalf("silences=%d last=%v, want 1 and zero", s.Silences, s.LastSentence)
	}
	// Garbage keeps the receiver silent; two summaries prove time passed
	// (> SilenceAfter) without a second warning.
	for rec.count("receiver input dropped") < 2 {
		if _, err := m.Write([]byte("\x00\xff garbage\r\n")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-rec.changed:
		case <-ctx.Done():
			t.Fatalf("no summaries: %s", rec)
		}
	}
	if n := rec.count("receiver silent: no valid sentence"); n != 1 {
		t.Fatalf("%d silence warnings in one episode, want 1", n)
	}
	before := time.Now()
	sim := &Simulator{Seed: 1, Start: simStart}
	if _, err := m.Write(sim.Epoch(0)); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(ctx, t, "receiver talking again")
	if s := c.Snapshot(); s.Silences != 1 || s.LastSentence.Before(before) {
		t.Errorf("silences=%d last=%v, want 1 and after %v", s.Silences, s.LastSentence, before)
	}
}

// TestReceiverDropSummary: dropped input is summed in one log line per
// period, with the reasons that grew.
func TestReceiverDropSummary(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	link := filepath.Join(t.TempDir(), "gps0")
	m, _ := ptyAt(t, link)
	rec := newLogRecorder()
	r := &Receiver{Device: link, Baud: 9600, Log: slog.New(rec), SummaryEvery: 200 * time.Millisecond}
	startReceiver(t, ctx, r)
	if _, err := m.Write([]byte("$GPRMC,1,2*00\r\n$GPGGA,1,2*00\r\n")); err != nil {
		t.Fatal(err)
	}
	got := rec.waitFor(ctx, t, "receiver input dropped")
	if got["bad_checksum"] != "2" {
		t.Errorf("summary %v: want bad_checksum=2", got)
	}
}

// TestReceiverIdleFlush: before the cycle ender is learned, the last epoch
// still leaves after a short silence (time-out fallback), not with the next.
func TestReceiverIdleFlush(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	link := filepath.Join(t.TempDir(), "gps0")
	m, _ := ptyAt(t, link)
	onFix, fixes := fixChan()
	r := &Receiver{Device: link, Baud: 9600, OnFix: onFix, Log: slog.New(slog.DiscardHandler)}
	startReceiver(t, ctx, r)
	sim := &Simulator{Seed: 1, Start: simStart}
	if _, err := m.Write(sim.Epoch(0)); err != nil {
		t.Fatal(err)
	}
	waitFix(ctx, t, fixes, sim.Fix(0).Time)
}

// TestReceiverAutoBaud: the simulator answers only at 38400 baud (garbage
// otherwise, read from the pty's line settings); the receiver finds it,
// remembers it, and tries it first on reopen.
func TestReceiverAutoBaud(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 12*time.Second)
	defer cancel()
	link := filepath.Join(t.TempDir(), "gps0")
	m, closeFn := ptyAt(t, link)
	if _, err := ttySpeed(m); err != nil {
		t.Skipf("pty line speed not readable: %v", err)
	}
	rec := newLogRecorder()
	c := new(Counters)
	onFix, fixes := fixChan()
	r := &Receiver{Device: link, Baud: 0, OnFix: onFix, Log: slog.New(rec), Counters: c}
	startReceiver(t, ctx, r)
	// A new pty's line speed is 38400: start writing only once the
	// receiver has set its first rate, or the first epochs would be clean.
	rec.waitFor(ctx, t, "receiver open")
	simCtx, simStop := context.WithCancel(ctx)
	simDone := make(chan struct{})
	go func() {
		defer close(simDone)
		(&Simulator{Seed: 4, Rate: 10, Baud: 38400}).Run(simCtx, m)
	}()
	// A write to a pty nobody reads blocks; closing the master ends it.
	t.Cleanup(func() { simStop(); closeFn(); <-simDone })
	got := rec.waitFor(ctx, t, "receiver baud rate found")
	if got["baud"] != "38400" || r.CurrentBaud() != 38400 {
		t.Fatalf("found %v, CurrentBaud %d; want 38400", got, r.CurrentBaud())
	}
	select {
	case <-fixes:
	case <-ctx.Done():
		t.Fatal("no fix at the found rate")
	}
	if s := c.Snapshot(); s.GarbageBytes == 0 {
		t.Errorf("no garbage counted: the wrong rates were not really wrong (%s)", s)
	}
	if rates := r.rates(); rates[0] != 38400 {
		t.Errorf("rates on reopen %v, want 38400 first", rates)
	}
	// Reopen: the device goes away and comes back; the first rate tried is
	// the remembered one.
	simStop()
	closeFn()
	<-simDone
	rec.waitFor(ctx, t, "receiver unavailable, retrying")
	n := rec.count("receiver open")
	ptyAt(t, link)
	for rec.count("receiver open") == n {
		select {
		case <-rec.changed:
		case <-ctx.Done():
			t.Fatal("not reopened")
		}
	}
	rec.mu.Lock()
	var baud string
	for _, x := range rec.records {
		if x.Message == "receiver open" {
			x.Attrs(func(a slog.Attr) bool {
				if a.Key == "baud" {
					baud = a.Value.String()
				}
				return true
			})
		}
	}
	rec.mu.Unlock()
	if baud != strconv.Itoa(38400) {
		t.Errorf("reopened at %s baud, want 38400 first", baud)
	}
}

// TestHeartbeatMonotonic: the heartbeat carries the monotonic clock, so a
// wall-clock step (NTP on a gateway without RTC) neither ages it nor makes
// it look fresh: the agent's watchdog compares it with time.Now().
func TestHeartbeatMonotonic(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	rec := newLogRecorder()
	r := &Receiver{Device: "/dev/missing", Baud: 9600, Log: slog.New(rec),
		open: func(string, int) (io.ReadCloser, error) { return nil, os.ErrNotExist }}
	if !r.Heartbeat().IsZero() {
		t.Fatal("heartbeat before Run")
	}
	before := time.Now()
	startReceiver(t, ctx, r)
	rec.waitFor(ctx, t, "receiver unavailable, retrying")
	hb := r.Heartbeat()
	if !strings.Contains(hb.String(), " m=") {
		t.Fatalf("heartbeat %v has no monotonic reading", hb)
	}
	if hb.Before(before) || time.Since(hb) < 0 {
		t.Errorf("heartbeat %v not between %v and now", hb, before)
	}
}
