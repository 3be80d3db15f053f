package main

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/internal/gpsdtest"
	"github.com/fleetedge/gps-agent/nmea"
)

// check's gpsd line: reachable and sending NMEA with a fix passes; gpsd down fails with a hint; a gpsd whose
// receiver is silent fails.
func TestCheckGpsd(t *testing.T) {
	f := newFeeder(t, 5)
	port := gpsdtest.FreePort(t)
	g := gpsdtest.Start(t, port, f.path)
	cfg := DefaultConfig()
	cfg.Receiver.Gpsd = g.Addr

	v, _ := checkGpsd(t.Context(), cfg, 2*time.Second)
	if v.Result != fail || !strings.Contains(v.Detail, "relayed no NMEA") || !strings.Contains(v.Detail, f.path) {
		t.Errorf("silent receiver: %+v", v)
	}
	f.start()
	v, clock := checkGpsd(t.Context(), cfg, 4*time.Second)
	f.pause()
	if v.Result != pass || !strings.Contains(v.Detail, "gpsd 3.") || !strings.Contains(v.Detail, "fix quality 1") {
		t.Errorf("sending: %+v", v)
	}
	if clock.Result == warn && strings.Contains(clock.Detail, "unknown") {
		t.Errorf("clock not judged after a fix: %+v", clock)
	}
	g.Stop()
	v, _ = checkGpsd(t.Context(), cfg, time.Second)
	if v.Result != fail || !strings.Contains(v.Detail, g.Addr) || !strings.Contains(v.Hint, "systemctl status gpsd") {
		t.Errorf("gpsd down: %+v", v)
	}
}

// check's modem line: the AT port answers OK; a port that answers nothing (another program holds it) fails with
// the ModemManager hint; a missing port fails naming it. The running daemon's last answers are shown.
func TestCheckATPort(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	m := startSimModem(t, 1)
	cfg := DefaultConfig()
	cfg.Receiver.AT = ATConfig{Device: m.ATPath(), Init: []string{"AT+QGPS=1"}}
	st := &fieldStatus{Now: time.Now(), Agent: &Status{Receiver: ReceiverStatus{Link: &nmea.LinkState{AT: &nmea.ATState{
		Device: m.ATPath(), Sent: time.Now().Add(-time.Minute), Why: "open", Rounds: 1,
		Results: []nmea.ATResult{{Command: "AT+QGPS=1", Final: "+CME ERROR: 504"}}}}}}}
	v := checkATPort(ctx, cfg, st)
	if v.Result != pass || !strings.Contains(v.Detail, "answers OK") || !strings.Contains(v.Detail, "AT+QGPS=1 -> +CME ERROR: 504") {
		t.Errorf("answering: %+v", v)
	}
	if m.Running() {
		t.Error("check started the engine: it sends only AT")
	}

	deaf := filepath.Join(t.TempDir(), "at")
	if _, _, closePTY, err := nmea.OpenPTY(deaf); err == nil {
		defer closePTY()
	}
	cfg.Receiver.AT.Device = deaf
	v = checkATPort(ctx, cfg, nil)
	if v.Result != fail || !strings.Contains(v.Detail, "no answer") || !strings.Contains(v.Hint, "ID_MM_PORT_IGNORE") {
		t.Errorf("nobody answers: %+v", v)
	}
	cfg.Receiver.AT.Device = filepath.Join(t.TempDir(), "ttyUSB9")
	if v = checkATPort(ctx, cfg, nil); v.Result != fail || !strings.Contains(v.Detail, "ttyUSB9") {
		t.Errorf("missing port: %+v", v)
	}
}

// startSimModem runs a simulated modem (NMEA at rate after AT+QGPS=1) until the test ends.
func startSimModem(t *testing.T, rate float64) *nmea.SimModem {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("pseudo-terminals are Linux's")
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &nmea.SimModem{Dir: t.TempDir(), Sim: nmea.Simulator{Rate: rate, Seed: 6}}
	ready := m.Ready()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("modem: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("modem: %v", err)
	}
	return m
}
