package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

func TestRolloverFix(t *testing.T) {
	build := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	real := time.Date(2027, 3, 14, 9, 26, 53, 589e6, time.UTC)
	tests := []struct {
		name       string
		reported   time.Time
		want       time.Time
		correction bool
	}{
		{"a real date is kept", real, real, false},
		{"the build date itself is kept", build, build, false},
		{"one era back (a 1999-2019 firmware window) is moved forward", real.Add(-gpsEra), real, true},
		{"two eras back is moved forward by two", real.Add(-2 * gpsEra), real, true},
		{"a date just before the build is moved a whole era, as gpsd does", build.Add(-time.Hour),
			build.Add(-time.Hour + gpsEra), true},
		{"before GPS time began (no week count gives it) is kept", time.Date(1979, 12, 31, 0, 0, 0, 0, time.UTC),
			time.Date(1979, 12, 31, 0, 0, 0, 0, time.UTC), false},
		{"a far corrupted year is kept (the filter's time rule judges it)", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			r := weekRollover{notBefore: build, log: slog.New(slog.NewTextHandler(&logs, nil))}
			for range 3 {
				f := r.fix(nmea.Fix{Time: tt.reported, Lat: 1})
				if !f.Time.Equal(tt.want) || f.Lat != 1 {
					t.Fatalf("fix(%s) = %s, want %s", tt.reported, f.Time, tt.want)
				}
			}
			want, lines := uint64(0), 0
			if tt.correction {
				want, lines = 3, 1
			}
			if got := r.fixed.Load(); got != want {
				t.Errorf("counted %d corrections, want %d", got, want)
			}
			if n := strings.Count(logs.String(), "week-number rollover"); n != lines {
				t.Errorf("logged %d lines, want %d (the first correction of a run):\n%s", n, lines, logs.String())
			}
		})
	}
}

func TestRolloverBuildDate(t *testing.T) {
	defer func(old string) { buildEpoch = old }(buildEpoch)
	for _, tt := range []struct {
		epoch string
		want  time.Time
	}{
		{"1764806400", time.Date(2025, 12, 4, 0, 0, 0, 0, time.UTC)}, // SOURCE_DATE_EPOCH as the Makefile passes it
		{"", fallbackBuildDate},  // go build, go run, go test
		{"0", fallbackBuildDate}, // no git: cross.mk's fallback
		{"yesterday", fallbackBuildDate},
	} {
		buildEpoch = tt.epoch
		if got := buildDate(); !got.Equal(tt.want) {
			t.Errorf("buildEpoch %q: build date %s, want %s", tt.epoch, got, tt.want)
		}
	}
}

// decode of an old capture keeps its dates; --fix-rollover corrects them as the daemon does.
func TestDecodeFixRollover(t *testing.T) {
	real := buildDate().Add(30 * 24 * time.Hour).Truncate(time.Second)
	sim := nmea.Simulator{Rate: 1, Start: real.Add(-gpsEra), Seed: 3} // a receiver with the rollover bug
	var capture bytes.Buffer
	for i := range 5 {
		capture.Write(sim.Epoch(i))
	}
	for _, tt := range []struct {
		args []string
		want time.Time
	}{
		{nil, real.Add(-gpsEra)},
		{[]string{"--fix-rollover"}, real},
	} {
		code, stdout, stderr := runCLI(t, capture.Bytes(), append([]string{"decode"}, tt.args...)...)
		if code != 0 {
			t.Fatalf("decode %v: exit %d: %s", tt.args, code, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if len(lines) != 5 {
			t.Fatalf("decode %v: %d records, want 5:\n%s", tt.args, len(lines), stdout)
		}
		r, err := decodeRecord([]byte(lines[0]))
		if err != nil {
			t.Fatal(err)
		}
		if !r.TS.Equal(tt.want) {
			t.Errorf("decode %v: first ts %s, want %s", tt.args, r.TS, tt.want)
		}
		if counted := strings.Contains(stderr, "5 dates moved forward by whole 1024-week eras"); counted != (tt.args != nil) {
			t.Errorf("decode %v: stderr = %q", tt.args, stderr)
		}
	}
}

// The daemon corrects a receiver with the rollover bug: its records carry today's date, and the log says why.
func TestRolloverDaemon(t *testing.T) {
	const stream = "rollover"
	k := uplinktest.StartKinesisMock(t, stream, 1)
	f := newFeeder(t, 10)
	f.sim.Start = f.sim.Start.Add(-gpsEra) // the receiver reports dates 1024 weeks back
	agent := startAgent(t, "run", "--config", writeConfig(t, f.path, k.Endpoint, stream))
	f.start()
	a := waitFor(t, agent, k, stream, 60*time.Second, "5 fixes", func(a *arrived) bool { return len(a.bySeq) >= 5 })
	f.pause()
	now := time.Now()
	for seq, r := range a.bySeq {
		if r.TS.Before(now.Add(-time.Minute)) || r.TS.After(now) {
			t.Fatalf("seq %d: ts %s, want the corrected date, within a minute before %s", seq, r.TS, now)
		}
	}
	agent.waitLog(t, "GNSS date corrected for the GPS week-number rollover")
	agent.stop(t)
}
