package main

import (
	"bytes"
	"log/slog"
	"math"
	"slices"
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
		for _, k := range fl.keep(f, f.Time) {
			out = append(out, k.Time.Sub(t0))
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
			kept := len(fl.keep(f, f.Time)) == 1
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

// epochAt is an epoch at GNSS time t0+gnss, received at r0+rx on the gateway's monotonic clock.
type epochAt struct{ gnss, rx time.Duration }

// r0 is the receive clock's origin for a gateway whose clock cannot vouch for the first epoch (booted on its last
// shutdown time): the filter then compares receive times only with each other. A gateway with a good clock
// receives t0 at t0.
var r0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestFilterTimeJump(t *testing.T) {
	const s = time.Second
	day, week := 24*time.Hour, 7*24*time.Hour
	y2079 := time.Date(2079, 11, 25, 12, 0, 3, 0, time.UTC).Sub(t0) // a corrupted RMC date that passed the checksum
	at1Hz := func(gnss ...time.Duration) []epochAt {                // received at the pace of the GNSS times' slots
		e := make([]epochAt, len(gnss))
		for i, g := range gnss {
			e[i] = epochAt{g, time.Duration(i) * s}
		}
		return e
	}
	tests := []struct {
		name     string
		epochs   []epochAt
		kept     []int // indexes of kept epochs
		dropped  uint64
		accepted int  // jumps accepted
		clockOK  bool // the gateway's clock agrees with GNSS time (received t0 at t0), else it starts at r0
	}{
		{"steady 1 Hz", at1Hz(0, 1*s, 2*s, 3*s), []int{0, 1, 2, 3}, 0, 0, true},
		{"isolated 2079 epoch dropped, the next good ones kept",
			at1Hz(0, 1*s, 2*s, y2079, 4*s, 5*s, 6*s), []int{0, 1, 2, 4, 5, 6}, 1, 0, true},
		{"isolated epoch a day back dropped", at1Hz(0, 1*s, 2*s, 3*s-day, 4*s, 5*s), []int{0, 1, 2, 4, 5}, 1, 0, true},
		{"a repeated epoch time is dropped", at1Hz(0, 1*s, 1*s, 2*s), []int{0, 1, 3}, 1, 0, true},
		{"a backwards step is held until 3 epochs agree, then nothing of it is lost",
			at1Hz(0, 1*s, 2*s, 3*s-time.Hour, 4*s-time.Hour, 5*s-time.Hour, 6*s-time.Hour), []int{0, 1, 2, 3, 4, 5, 6}, 0, 1, true},
		{"a week forward with no receive time to explain it (gateway suspended) is held until 3 epochs agree",
			at1Hz(0, 1*s, 2*s, 3*s+week, 4*s+week, 5*s+week, 6*s+week), []int{0, 1, 2, 3, 4, 5, 6}, 0, 1, true},
		{"a forward gap explained by the receive time elapsed is accepted at once",
			[]epochAt{{0, 0}, {1 * s, 1 * s}, {week, week + 400*time.Millisecond}, {week + s, week + s}},
			[]int{0, 1, 2, 3}, 0, 0, true},
		{"epochs received in a burst (buffered) keep their GNSS pace",
			[]epochAt{{0, 0}, {1 * s, 1 * s}, {2 * s, 5 * s}, {3 * s, 5*s + time.Millisecond}, {4 * s, 5*s + 2*time.Millisecond}},
			[]int{0, 1, 2, 3, 4}, 0, 0, true},
		{"two suspect epochs that disagree are both dropped",
			at1Hz(0, 1*s, 2*s, y2079, -20*365*day, 5*s, 6*s), []int{0, 1, 2, 5, 6}, 2, 0, true},
		{"a run of suspects broken by a good epoch starts over",
			at1Hz(0, 1*s, 2*s, 3*s+day, 4*s+day, 5*s, 6*s+day, 7*s+day, 8*s), []int{0, 1, 2, 5, 8}, 4, 0, true},
		{"a bad first epoch is dropped when the gateway clock vouches for the next",
			at1Hz(y2079, 1*s, 2*s, 3*s, 4*s), []int{1, 2, 3, 4}, 1, 0, true},
		{"a first epoch the gateway clock cannot vouch for is held until 3 agree, then kept",
			at1Hz(0, 1*s, 2*s, 3*s), []int{0, 1, 2, 3}, 0, 1, false},
		{"a bad first epoch the gateway clock cannot judge is dropped once 3 good ones agree",
			at1Hz(y2079, 1*s, 2*s, 3*s, 4*s), []int{1, 2, 3, 4}, 1, 1, false},
		{"10 Hz backwards step held for 3 epochs, then kept",
			[]epochAt{{0, 0}, {100 * time.Millisecond, 100 * time.Millisecond},
				{200*time.Millisecond - day, 200 * time.Millisecond}, {300*time.Millisecond - day, 300 * time.Millisecond},
				{400*time.Millisecond - day, 400 * time.Millisecond}, {500*time.Millisecond - day, 500 * time.Millisecond}},
			[]int{0, 1, 2, 3, 4, 5}, 0, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			fl := newFilter(FilterConfig{}) // keeps every fix the time rule lets through
			fl.log = slog.New(slog.NewTextHandler(&logs, nil))
			origin := r0
			if tt.clockOK {
				origin = t0
			}
			var kept []int
			for i, e := range tt.epochs {
				// Sats carries the epoch's index through the filter.
				f := nmea.Fix{Time: t0.Add(e.gnss), Lat: 53.5, Lon: 10, Quality: 1, HDOP: 1, SpeedKmh: 50, Sats: i}
				for _, k := range fl.keep(f, origin.Add(e.rx)) {
					kept = append(kept, k.Sats)
				}
			}
			if !slices.Equal(kept, tt.kept) {
				t.Errorf("kept %v, want %v", kept, tt.kept)
			}
			if got := fl.dropped[dropTimeJump].Load(); got != tt.dropped {
				t.Errorf("dropped as time_jump: %d, want %d", got, tt.dropped)
			}
			if got := strings.Count(logs.String(), "GNSS time jump accepted"); got != tt.accepted {
				t.Errorf("logged %d accepted jumps, want %d:\n%s", got, tt.accepted, logs.String())
			}
			suspects := 0
			if tt.dropped > 0 || tt.accepted > 0 {
				suspects = 1
			}
			if n := strings.Count(logs.String(), "GNSS time jumped"); n != suspects {
				t.Errorf("logged %d held epochs, want %d (once per run):\n%s", n, suspects, logs.String())
			}
		})
	}
}

// TestFilterBadDateHour is the field report: one epoch dated 2079 (a corrupted RMC date that still passed the
// checksum), then an hour of good fixes. None of them may be lost to it.
func TestFilterBadDateHour(t *testing.T) {
	good := newDrive().run(3599, time.Second, 50, 0).fixes
	bad := good[0]
	bad.Time = time.Date(2079, bad.Time.Month(), bad.Time.Day(), 12, 0, 2, 0, time.UTC)
	kept := func(fixes []nmea.Fix, origin time.Time) []time.Time {
		fl := newFilter(DefaultFilterConfig())
		var out []time.Time
		for i, f := range fixes {
			for _, k := range fl.keep(f, origin.Add(time.Duration(i)*time.Second)) {
				out = append(out, k.Time)
			}
		}
		return out
	}
	for _, tt := range []struct {
		name   string
		at     int       // index of the bad epoch among the good fixes
		origin time.Time // the gateway clock when the first fix arrives
		lose   int       // good fixes that may be lost to it
	}{
		{"after a first good fix: 3,598 good fixes follow", 1, t0, 0},
		{"as the first fix after start", 0, t0, 0},
		{"as the first fix after start, on a gateway clock that cannot judge it", 0, r0, 0},
		// With no timeline yet, the good first epoch was held; the bad one broke its run.
		{"after a first good fix, on a gateway clock that cannot judge it", 1, r0, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := kept(good, tt.origin)[tt.lose:] // what the filter keeps of the good fixes alone
			got := kept(slices.Insert(slices.Clone(good), tt.at, bad), tt.origin)
			if !slices.Equal(got, want) {
				t.Errorf("kept %d fixes (first %v), want the %d kept without the 2079 epoch, less %d (first %v)",
					len(got), got[:min(3, len(got))], len(want), tt.lose, want[:min(3, len(want))])
			}
		})
	}
}
