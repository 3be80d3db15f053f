package nmea

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/internal/gpsdtest"
)

// tee writes the same simulated epochs to every pty master, paced at rate.
func tee(ctx context.Context, sim *Simulator, rate float64, masters ...*os.File) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		b := sim.Epoch(i)
		for _, m := range masters {
			m.SetWriteDeadline(time.Now().Add(time.Second))
			m.Write(b)
		}
	}
}

// fixSet collects fixes by GNSS time.
type fixSet struct {
	mu    sync.Mutex
	fixes map[time.Time]Fix
	added chan struct{}
}

func newFixSet() *fixSet { return &fixSet{fixes: map[time.Time]Fix{}, added: make(chan struct{}, 1)} }

func (s *fixSet) add(f Fix) {
	s.mu.Lock()
	s.fixes[f.Time] = f
	s.mu.Unlock()
	select {
	case s.added <- struct{}{}:
	default:
	}
}

func (s *fixSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.fixes)
}

// waitLen waits until the set holds n fixes.
func (s *fixSet) waitLen(ctx context.Context, t *testing.T, n int, what string) {
	t.Helper()
	for s.len() < n {
		select {
		case <-s.added:
		case <-ctx.Done():
			t.Fatalf("%s: %d fixes, want %d: %v", what, s.len(), n, ctx.Err())
		}
	}
}

// sameFix compares every field, NaN equal to NaN.
func sameFix(a, b Fix) bool {
	eq := func(x, y float64) bool { return x == y || math.IsNaN(x) && math.IsNaN(y) }
	return a.Time.Equal(b.Time) && eq(a.Lat, b.Lat) && eq(a.Lon, b.Lon) && eq(a.SpeedKmh, b.SpeedKmh) &&
		eq(a.CourseDeg, b.CourseDeg) && eq(a.AltM, b.AltM) && eq(a.HDOP, b.HDOP) && a.Quality == b.Quality &&
		a.Sats == b.Sats && a.DateSource == b.DateSource
}

// TestGpsdSameFixesAsSerial: the same simulated NMEA read from a serial port
// and through a real gpsd (on another pty with the same bytes) gives the same
// fixes; and gpsd's replies before the NMEA are not counted as garbage.
func TestGpsdSameFixesAsSerial(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	mGpsd, _ := ptyAt(t, filepath.Join(dir, "gpsd-side"))
	mSerial, _ := ptyAt(t, filepath.Join(dir, "serial-side"))
	g := gpsdtest.Start(t, gpsdtest.FreePort(t), filepath.Join(dir, "gpsd-side"))

	viaGpsd, viaSerial := newFixSet(), newFixSet()
	cg, cs := new(Counters), new(Counters)
	rg := &Receiver{Gpsd: g.Addr, OnFix: viaGpsd.add, Counters: cg, Log: slog.New(newLogRecorder())}
	rs := &Receiver{Device: filepath.Join(dir, "serial-side"), Baud: 9600, OnFix: viaSerial.add, Counters: cs,
		Log: slog.New(newLogRecorder())}
	startReceiver(t, ctx, rg)
	startReceiver(t, ctx, rs)
	sim := &Simulator{Rate: 5, Seed: 9, Start: time.Now().UTC().Truncate(time.Second)}
	go tee(ctx, sim, 5, mGpsd, mSerial)

	viaGpsd.waitLen(ctx, t, 25, "through gpsd")
	viaSerial.waitLen(ctx, t, 25, "serial")
	viaGpsd.mu.Lock()
	viaSerial.mu.Lock()
	defer viaGpsd.mu.Unlock()
	defer viaSerial.mu.Unlock()
	common := 0
	for ts, fg := range viaGpsd.fixes {
		fs, ok := viaSerial.fixes[ts]
		if !ok {
			continue // one side started or stopped an epoch earlier
		}
		common++
		if !sameFix(fg, fs) {
			t.Errorf("fix at %s differs:\n gpsd   %+v\n serial %+v", ts.Format("15:04:05.00"), fg, fs)
		}
	}
	if common < 20 {
		t.Errorf("only %d fixes in common (gpsd %d, serial %d)", common, len(viaGpsd.fixes), len(viaSerial.fixes))
	}
	if s := cg.Snapshot(); s.GarbageBytes != 0 || s.BadChecksum != 0 {
		t.Errorf("through gpsd: %d garbage bytes, %d bad checksums: gpsd's JSON leaked into the decoder", s.GarbageBytes, s.BadChecksum)
	}
	st := rg.Link()
	if st.Source != "gpsd" || st.State != LinkOpen || st.Gpsd == nil || st.Gpsd.Release == "" ||
		len(st.Gpsd.Devices) != 1 || st.Gpsd.Devices[0] != filepath.Join(dir, "gpsd-side") {
		t.Errorf("link state %+v gpsd %+v", st, st.Gpsd)
	}
}

// TestGpsdRestart: gpsd not yet up, then up, then restarted mid-run: the same
// Run connects when it can, reconnects with backoff, and the link state says
// what is going on meanwhile.
func TestGpsdRestart(t *testing.T) {
	gpsdtest.Binary(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	dev := filepath.Join(t.TempDir(), "gps0")
	m, _ := ptyAt(t, dev)
	port := gpsdtest.FreePort(t)
	fixes := newFixSet()
	rec := newLogRecorder()
	c := new(Counters)
	r := &Receiver{Gpsd: fmt.Sprintf("127.0.0.1:%d", port), OnFix: fixes.add, Counters: c, Log: slog.New(rec)}
	startReceiver(t, ctx, r)
	sim := &Simulator{Rate: 5, Seed: 5, Start: time.Now().UTC().Truncate(time.Second)}
	go tee(ctx, sim, 5, m)

	// gpsd not up yet: unavailable, retrying.
	rec.waitFor(ctx, t, "receiver unavailable, retrying")
	if st := r.Link(); st.State != LinkUnavailable || st.LastError == "" {
		t.Errorf("before gpsd: %+v", st)
	}
	g := gpsdtest.Start(t, port, dev)
	fixes.waitLen(ctx, t, 5, "gpsd up")

	g.Stop()
	waitState(ctx, t, r, LinkUnavailable)
	n := fixes.len()
	gpsdtest.Start(t, port, dev)
	fixes.waitLen(ctx, t, n+5, "gpsd restarted")
	if st := r.Link(); st.State != LinkOpen {
		t.Errorf("after the restart: %+v", st)
	}
	if s := c.Snapshot(); s.Reconnects < 1 {
		t.Errorf("reconnects %d, want the restart counted", s.Reconnects)
	}
}

// waitState polls the link state until it is want: the receiver changes it
// from its own goroutine, and nothing signals it.
func waitState(ctx context.Context, t *testing.T, r *Receiver, want string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for r.Link().State != want {
		select {
		case <-ctx.Done():
			t.Fatalf("link state %+v, want %s", r.Link(), want)
		case <-tick.C:
		}
	}
}

// TestProbeGpsd: check's probe hears NMEA and a fix through gpsd, names the
// device gpsd reads, and fails on a port where no gpsd listens.
func TestProbeGpsd(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	dev := filepath.Join(t.TempDir(), "gps0")
	m, _ := ptyAt(t, dev)
	g := gpsdtest.Start(t, gpsdtest.FreePort(t), dev)
	go tee(ctx, &Simulator{Rate: 5, Seed: 3, Start: time.Now().UTC().Truncate(time.Second)}, 5, m)
	res, info, err := ProbeGpsd(ctx, g.Addr, 5*time.Second)
	if err != nil || !res.NMEA || res.LastFix == nil || len(info.Devices) != 1 || info.Devices[0] != dev || info.Release == "" {
		t.Errorf("ProbeGpsd = %+v, %+v, %v", res, info, err)
	}
	g.Stop()
	if _, _, err := ProbeGpsd(ctx, g.Addr, time.Second); err == nil || !strings.Contains(err.Error(), g.Addr) {
		t.Errorf("no gpsd: err %v, want one naming %s", err, g.Addr)
	}
}
