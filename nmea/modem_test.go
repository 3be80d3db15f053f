package nmea

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// startModem runs a simulated modem until the test ends and waits for its
// ports.
func startModem(t *testing.T, ctx context.Context) *SimModem {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the simulated modem's ports are Linux pseudo-terminals")
	}
	m := &SimModem{Dir: t.TempDir(), Sim: Simulator{Rate: 5, Seed: 4}}
	ready := m.Ready()
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(mctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("SimModem.Run = %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("modem did not start: %v", err)
	}
	return m
}

// TestSendAT: each command gets its own final result, whatever the echo and
// the unsolicited RDY before it; a failing command does not stop the next.
func TestSendAT(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	m := startModem(t, ctx)
	res, err := SendAT(ctx, ATConfig{Device: m.ATPath(), Init: []string{"AT", "AT+QGPS=1", "AT+QGPS=1", "AT+QGPS?", "AT+BOGUS"}})
	if err != nil {
		t.Fatalf("SendAT: %v", err)
	}
	want := []ATResult{
		{Command: "AT", OK: true, Final: "OK"},
		{Command: "AT+QGPS=1", OK: true, Final: "OK"},
		{Command: "AT+QGPS=1", Final: "+CME ERROR: 504"},
		{Command: "AT+QGPS?", OK: true, Final: "OK", Reply: "+QGPS: 1"},
		{Command: "AT+BOGUS", Final: "ERROR"},
	}
	if !slices.Equal(res, want) {
		t.Errorf("results\n got %+v\nwant %+v", res, want)
	}
	if !m.Running() {
		t.Error("the engine does not run after AT+QGPS=1")
	}
}

// TestSendATTimeout: a port that never answers gives a result with an error
// per command, within the timeout each, and no error of the port.
func TestSendATTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	link := t.TempDir() + "/at"
	ptyAt(t, link) // nobody answers on the master
	start := time.Now()
	res, err := SendAT(ctx, ATConfig{Device: link, Init: []string{"AT+QGPS=1", "AT"}, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("SendAT: %v", err)
	}
	if len(res) != 2 || res[0].OK || !strings.Contains(res[0].Error, "no final result") || res[1].Error == "" {
		t.Errorf("results %+v, want two timeouts", res)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s for two commands of 300 ms", d)
	}
	if _, err := SendAT(ctx, ATConfig{Device: t.TempDir() + "/none", Init: []string{"AT"}}); err == nil || !strings.Contains(err.Error(), "/none") {
		t.Errorf("missing AT port: err %v, want one naming it", err)
	}
}

// TestModemReceiver: a modem's engine sends NMEA only once started. The
// receiver starts it when it opens the NMEA port, again after the modem
// reset (both ports recreated, the engine stopped), and again when the engine
// stops while the ports stay open (silence).
func TestModemReceiver(t *testing.T) {
	if q := os.Getenv("GPS_AGENT_TEST_EMULATED"); q != "" {
		t.Skipf("resets and silences timed in real time; under %s they measure the emulator (runs natively in make test)", q)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	m := startModem(t, ctx)
	rec := newLogRecorder()
	c := new(Counters)
	onFix, fixes := fixChan()
	r := &Receiver{Device: m.NMEAPath(), Baud: 9600, OnFix: onFix, Log: slog.New(rec), Counters: c,
		SilenceAfter: 1500 * time.Millisecond,
		AT:           &ATConfig{Device: m.ATPath(), Init: []string{"AT+QGPS=1"}}}
	startReceiver(t, ctx, r)
	nextFix := func(what string) Fix {
		t.Helper()
		select {
		case f := <-fixes:
			return f
		case <-ctx.Done():
			t.Fatalf("%s: no fix; modem got %q; log:\n%s", what, m.Commands(), rec)
		}
		return Fix{}
	}
	nextFix("first start")
	if st := r.Link(); st.State != LinkOpen || st.AT == nil || st.AT.Rounds < 1 || st.AT.Why != "open" ||
		len(st.AT.Results) != 1 || !st.AT.Results[0].OK {
		t.Errorf("link after start: %+v %+v", st, st.AT)
	}

	// The modem resets: both ports vanish and come back, the engine stopped.
	m.Reset()
	<-m.Ready()
	drain(fixes)
	rec.waitFor(ctx, t, "receiver unavailable, retrying")
	// A fix decoded from before the reset may still be on its way: the one that counts follows the new command.
	for countCmd(m.Commands(), "AT+QGPS=1") < 2 {
		select {
		case <-ctx.Done():
			t.Fatalf("AT+QGPS=1 not sent again after the reset; modem got %q; log:\n%s", m.Commands(), rec)
		case <-time.After(20 * time.Millisecond):
		}
	}
	drain(fixes)
	f := nextFix("after the reset")
	if m.Running() != true {
		t.Error("engine not running after the reset, yet a fix came")
	}
	if n := countCmd(m.Commands(), "AT+QGPS=1"); n < 2 {
		t.Errorf("AT+QGPS=1 sent %d times, want again after the reset", n)
	}
	if s := c.Snapshot(); s.Reconnects < 1 {
		t.Errorf("reconnects %d after the reset", s.Reconnects)
	}
	_ = f

	// The engine stops, the ports stay open: silence, then the command again.
	before := countCmd(m.Commands(), "AT+QGPS=1")
	m.StopEngine()
	rec.waitFor(ctx, t, "receiver silent: no valid sentence")
	drain(fixes)
	nextFix("after the silence")
	if n := countCmd(m.Commands(), "AT+QGPS=1"); n <= before {
		t.Errorf("AT+QGPS=1 not sent again on silence (%d times)", n)
	}
	if st := r.Link(); st.AT.Why != "silent" {
		t.Errorf("last round's reason %q, want silent", st.AT.Why)
	}
}

// TestModemEngineAlreadyRunning: +CME ERROR: 504 is logged with the reply and
// reading goes on.
func TestModemEngineAlreadyRunning(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	m := startModem(t, ctx)
	if _, err := SendAT(ctx, ATConfig{Device: m.ATPath(), Init: []string{"AT+QGPS=1"}}); err != nil {
		t.Fatal(err)
	}
	rec := newLogRecorder()
	onFix, fixes := fixChan()
	r := &Receiver{Device: m.NMEAPath(), Baud: 9600, OnFix: onFix, Log: slog.New(rec),
		AT: &ATConfig{Device: m.ATPath(), Init: []string{"AT+QGPS=1"}}}
	startReceiver(t, ctx, r)
	select {
	case <-fixes:
	case <-ctx.Done():
		t.Fatalf("no fix; log:\n%s", rec)
	}
	attrs := rec.waitFor(ctx, t, "modem command")
	if attrs["final"] != "+CME ERROR: 504" || attrs["ok"] != "false" {
		t.Errorf("logged %v, want the +CME ERROR: 504 reply", attrs)
	}
}

func countCmd(cmds []string, cmd string) int {
	n := 0
	for _, c := range cmds {
		if c == cmd {
			n++
		}
	}
	return n
}

func drain(ch chan Fix) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}
