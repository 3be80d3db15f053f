package main

import (
	"bytes"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// drive makes a fix every period, moving north at speed km/h along course (degrees) from the previous fix.
type drive struct {
	fixes []nmea.Fix
	at    time.Time
	lat   float64
	lon   float64
}

func newDrive() *drive { return &drive{at: t0, lat: 53.5, lon: 10} }

func (d *drive) run(n int, period time.Duration, speed, course float64) *drive {
	for range n {
		d.at = d.at.Add(period)
		m := speed / 3.6 * period.Seconds()
		d.lat += m * math.Cos(course*math.Pi/180) / 111_195
		d.lon += m * math.Sin(course*math.Pi/180) / (111_195 * math.Cos(d.lat*math.Pi/180))
		d.fixes = append(d.fixes, nmea.Fix{Time: d.at, Lat: d.lat, Lon: d.lon, SpeedKmh: speed, CourseDeg: course,
			AltM: 10, Quality: 1, Sats: 9, HDOP: 0.9})
	}
	return d
}

func keptTimes(fl *filter, fixes []nmea.Fix) []time.Duration {
	var out []time.Duration
	for _, f := range fixes {
		if fl.keep(f) {
			out = append(out, f.Time.Sub(t0))
		}
	}
	return out
}

func TestFilterDefaults(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		fixes []nmea.Fix
		want  []time.Duration // times of kept fixes after t0
	}{
		{"10 Hz moving is thinned to 1 Hz", newDrive().run(25, 100*ms, 50, 0).fixes,
			[]time.Duration{100 * ms, 1100 * ms, 2100 * ms}},
		{"1 Hz moving keeps every fix", newDrive().run(4, time.Second, 50, 0).fixes,
			[]time.Duration{1 * time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}},
		{"parked: one fix per heartbeat", newDrive().run(150, time.Second, 0, 0).fixes,
			[]time.Duration{1 * time.Second, 61 * time.Second, 121 * time.Second}},
		{"standing receiver's speed noise below stop speed is parked", newDrive().run(70, time.Second, 3, 90).fixes,
			[]time.Duration{1 * time.Second, 61 * time.Second}},
		{"stopping keeps a fix", newDrive().run(3, time.Second, 40, 0).run(5, time.Second, 0, 0).fixes,
			[]time.Duration{1 * time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}},
		{"starting keeps a fix", newDrive().run(5, time.Second, 0, 0).run(2, time.Second, 30, 0).fixes,
			[]time.Duration{1 * time.Second, 6 * time.Second, 7 * time.Second}},
		{"crawling is kept every 5 m", newDrive().run(10, time.Second, 6, 0).fixes, // 1.67 m/s
			[]time.Duration{1 * time.Second, 4 * time.Second, 7 * time.Second, 10 * time.Second}},
		{"a turn while crawling keeps a fix at once", newDrive().run(2, time.Second, 6, 0).run(1, time.Second, 6, 90).fixes,
			[]time.Duration{1 * time.Second, 3 * time.Second}},
		{"a turn at 10 Hz waits for min period only", newDrive().run(5, 100*ms, 50, 0).run(16, 100*ms, 50, 90).fixes,
			[]time.Duration{100 * ms, 1100 * ms, 2100 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := keptTimes(newFilter(DefaultFilterConfig()), tt.fixes)
			if len(got) != len(tt.want) {
				t.Fatalf("kept %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("kept %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestFilterQualityAndCounts(t *testing.T) {
	base := nmea.Fix{Time: t0, Lat: 53.5, Lon: 10, SpeedKmh: 50, CourseDeg: 0, Quality: 1, Sats: 9, HDOP: 1}
	tests := []struct {
		name   string
		cfg    func(*FilterConfig)
		mutate func(*nmea.Fix)
		reason string
	}{
		{"quality 0 is never kept", nil, func(f *nmea.Fix) { f.Quality = 0 }, "quality"},
		{"min quality 2 drops plain GPS", func(c *FilterConfig) { c.MinQuality = 2 }, nil, "quality"},
		{"hdop above max", nil, func(f *nmea.Fix) { f.HDOP = 25 }, "hdop"},
		{"unknown hdop is kept", nil, func(f *nmea.Fix) { f.HDOP = math.NaN() }, ""},
		{"too few sats", func(c *FilterConfig) { c.MinSats = 5 }, func(f *nmea.Fix) { f.Sats = 4 }, "sats"},
		{"unknown sats kept", func(c *FilterConfig) { c.MinSats = 5 }, func(f *nmea.Fix) { f.Sats = -1 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultFilterConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			f := base
			if tt.mutate != nil {
				tt.mutate(&f)
			}
			fl := newFilter(cfg)
			kept := fl.keep(f)
			if kept != (tt.reason == "") {
				t.Fatalf("kept = %v, want reason %q", kept, tt.reason)
			}
			fl.eachDropped(func(reason string, n uint64) {
				if want := uint64(0); reason == tt.reason {
					if n != 1 {
						t.Errorf("dropped[%s] = %d, want 1", reason, n)
					}
				} else if n != want {
					t.Errorf("dropped[%s] = %d, want 0", reason, n)
				}
			})
		})
	}
}

func TestFilterTimeBackwards(t *testing.T) {
	fl := newFilter(DefaultFilterConfig())
	d := newDrive().run(3, time.Second, 50, 0)
	fl.keep(d.fixes[2])
	if fl.keep(d.fixes[0]) {
		t.Fatal("kept a fix older than the last kept one")
	}
	if fl.dropped[dropBackwards].Load() != 1 {
		t.Fatal("not counted as time_backwards")
	}
}

func TestClockWatch(t *testing.T) {
	var logs bytes.Buffer
	c := &clockWatch{log: slog.New(slog.NewTextHandler(&logs, nil))}
	gnss := t0
	steps := []time.Duration{0, 500 * time.Millisecond, 10 * time.Second, 10*time.Second + 100*time.Millisecond, 30 * time.Second, 0}
	for i, off := range steps {
		c.observe(gnss.Add(time.Duration(i)*time.Second), gnss.Add(time.Duration(i)*time.Second+off))
	}
	out := logs.String()
	if n := strings.Count(out, "gateway clock is off GNSS time"); n != 2 {
		t.Errorf("logged the offset %d times, want 2 (once at 10s, once when it changed to 30s):\n%s", n, out)
	}
	if !strings.Contains(out, "offset=10s") || !strings.Contains(out, "offset=30s") || !strings.Contains(out, "agrees with GNSS time again") {
		t.Errorf("log:\n%s", out)
	}
	if got := c.skewed.Load(); got != 3 {
		t.Errorf("skewed fixes = %d, want 3", got)
	}
}
