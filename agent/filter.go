package main

import (
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

// FilterConfig decides which fixes are kept, as telematics units do: a receiver at 10 Hz would cost a fleet ten
// times the data for little more information, and a parked truck needs only a sign of life.
//
// While moving, a fix is kept when at least MinPeriod has passed since the last kept fix and the truck has moved
// MinDistanceM, or turned MinCourseChangeDeg, or Heartbeat has passed. Stopping or starting (crossing
// StopSpeedKmh) keeps the next fix MinPeriod allows. While stopped, one fix per Heartbeat is kept. Fixes below
// the quality floors (MinQuality, MaxHDOP, MinSats) are never kept. Before any rule compares times, a fix's GNSS
// time must follow the epochs before it: one that jumps is held until 3 epochs in a row agree, then the held epochs
// go on with it; an isolated one is dropped (timejump.go).
type FilterConfig struct {
	// MinPeriod is the least time between two kept fixes. Default 1s: a 10 Hz receiver is thinned to 1 Hz, which
	// is finer than a dashboard map shows, and a tenth of the bytes.
	MinPeriod Duration `toml:"min_period"`
	// Heartbeat is the longest time without a kept fix, moving or not. Default 60s: a parked truck still shows up
	// as alive and where it is, at about 1 KB a minute.
	Heartbeat Duration `toml:"heartbeat"`
	// MinDistanceM is how far (metres, great circle) a moving truck must go before its next fix is kept.
	// Default 5: a truck crawling in a queue sends a fix every few seconds, not every second.
	MinDistanceM float64 `toml:"min_distance_m"`
	// MinCourseChangeDeg keeps a fix when the course turned this much since the last kept fix, whatever the
	// distance. Default 15: corners show on the map as corners.
	MinCourseChangeDeg float64 `toml:"min_course_change_deg"`
	// StopSpeedKmh: below this speed the truck counts as stopped. Default 5: GNSS speed of a standing receiver
	// wanders by a few km/h.
	StopSpeedKmh float64 `toml:"stop_speed_kmh"`
	// MinQuality is the least GGA fix quality kept (1 GPS, 2 DGPS, 4/5 RTK, 6 dead reckoning). Default 1.
	MinQuality int `toml:"min_quality"`
	// MaxHDOP drops fixes whose horizontal dilution of precision is above it; 0 keeps all. Default 20: beyond it a
	// position can be off by hundreds of metres.
	MaxHDOP float64 `toml:"max_hdop"`
	// MinSats drops fixes from fewer satellites; 0 keeps all. Default 0: many receivers do not report it.
	MinSats int `toml:"min_sats"`
}

// DefaultFilterConfig is the filter a gateway runs without configuration.
func DefaultFilterConfig() FilterConfig {
	return FilterConfig{
		MinPeriod:          Duration{time.Second},
		Heartbeat:          Duration{time.Minute},
		MinDistanceM:       5,
		MinCourseChangeDeg: 15,
		StopSpeedKmh:       5,
		MinQuality:         1,
		MaxHDOP:            20,
	}
}

// Why a fix was dropped; the index of filterCounts.
type dropReason int

const (
	dropPeriod   dropReason = iota // sooner than MinPeriod after the last kept fix
	dropDistance                   // moving, but neither far enough nor turned enough
	dropStopped                    // stopped, heartbeat not due
	dropQuality                    // below MinQuality
	dropHDOP                       // above MaxHDOP
	dropSats                       // fewer than MinSats
	dropTimeJump                   // GNSS time jumped and the epochs after it did not agree with it (timejump.go)
	numDropReasons
)

var dropNames = [numDropReasons]string{"period", "distance", "stopped", "quality", "hdop", "sats", "time_jump"}

// filter keeps or drops each fix. Not safe for concurrent use except its counters.
type filter struct {
	cfg     FilterConfig
	log     *slog.Logger // nil: no log
	time    timeline     // judges each fix's GNSS time before any rule compares times
	held    []rxFix      // the run of suspect epochs the timeline is judging (at most jumpAgree-1)
	out     []rxFix      // what keep returns, reused: no allocation per fix
	last    nmea.Fix     // the last kept fix
	lastMov bool         // whether the truck was moving at the last kept fix
	kept    bool         // whether any fix was kept yet on the current timeline
	dropped [numDropReasons]atomic.Uint64

	jumpLogged bool     // a dropped jump was logged: once per run, the counter has the rest
	jumps      logLimit // accepted jumps, logged at most once a minute
}

// rxFix is a fix and when the gateway received it.
type rxFix struct {
	nmea.Fix
	rx time.Time
}

func newFilter(cfg FilterConfig) *filter {
	return &filter{cfg: cfg, held: make([]rxFix, 0, jumpAgree), out: make([]rxFix, 0, jumpAgree)}
}

// keep takes f, received at rx (time.Now: its monotonic reading measures elapsed time, its wall reading may vouch
// for the first epoch), and returns the fixes kept, oldest first: usually none or f alone; after a jump in GNSS
// time is believed, the epochs held while it was judged and f. A dropped fix is counted by reason. The slice is
// valid until the next call.
func (fl *filter) keep(f nmea.Fix, rx time.Time) []rxFix {
	fl.out = fl.out[:0]
	if !fl.timeHolds(f, rx) {
		return fl.out
	}
	for _, g := range fl.held {
		if r, ok := fl.decide(g.Fix); !ok {
			fl.dropped[r].Add(1)
			continue
		}
		fl.last, fl.lastMov, fl.kept = g.Fix, fl.moving(g.Fix), true
		fl.out = append(fl.out, g)
	}
	fl.held = fl.held[:0]
	return fl.out
}

func (fl *filter) decide(f nmea.Fix) (dropReason, bool) {
	c := &fl.cfg
	switch {
	case f.Quality < c.MinQuality:
		return dropQuality, false
	case c.MaxHDOP > 0 && !math.IsNaN(f.HDOP) && f.HDOP > c.MaxHDOP:
		return dropHDOP, false
	case c.MinSats > 0 && f.Sats >= 0 && f.Sats < c.MinSats:
		return dropSats, false
	}
	if !fl.kept {
		return 0, true
	}
	// The timeline makes the kept fixes' times increase: elapsed > 0.
	elapsed := f.Time.Sub(fl.last.Time)
	switch {
	case elapsed < c.MinPeriod.Duration:
		return dropPeriod, false
	case elapsed >= c.Heartbeat.Duration:
		return 0, true
	}
	moving := fl.moving(f)
	switch {
	case moving != fl.lastMov: // stopped or started
		return 0, true
	case !moving:
		return dropStopped, false
	case distanceM(fl.last, f) >= c.MinDistanceM:
		return 0, true
	case courseChange(fl.last.CourseDeg, f.CourseDeg) >= c.MinCourseChangeDeg:
		return 0, true
	}
	return dropDistance, false
}

// timeHolds appends f to fl.held and reports whether the held fixes' GNSS times may now be used: f follows the
// timeline (held is f alone), or f is the jumpAgree-th epoch agreeing with a jump, which starts a new timeline
// (held is the whole run, oldest first). It reports false while f is held as part of a run that jumped from the
// timeline. A run broken before it is believed is dropped. No single epoch decides the timeline, so none can
// wedge the filter, and a real jump loses nothing.
func (fl *filter) timeHolds(f nmea.Fix, rx time.Time) bool {
	switch fl.time.step(stamp{gnss: f.Time, rx: rx}) {
	case timeOK:
		fl.dropHeld()
		fl.held = append(fl.held, rxFix{f, rx})
	case timeSuspect:
		if fl.time.runLen == 1 { // a new run: the one before it broke
			fl.dropHeld()
		}
		fl.held = append(fl.held, rxFix{f, rx})
		if !fl.jumpLogged && fl.log != nil {
			fl.log.Warn("GNSS time jumped: fix held", "gnss_time", f.Time, "timeline_at", fl.time.last.gnss,
				"hint", fmt.Sprintf("a corrupted date, or the receiver's clock moved (or, at start, a gateway clock "+
					"that cannot vouch for it); held fixes go on once %d epochs in a row agree, and are dropped "+
					"otherwise; further holds are only counted (filter time_jump)", jumpAgree))
			fl.jumpLogged = true
		}
		return false
	case timeJumped:
		fl.kept = false // nothing before the jump is compared with what follows it
		fl.jumps.note()
		if n, ok := fl.jumps.due(rx, time.Minute); ok && fl.log != nil {
			fl.log.Warn("GNSS time jump accepted", "gnss_time", f.Time, "agreeing_epochs", jumpAgree, "jumps", n)
		}
		fl.held = append(fl.held, rxFix{f, rx})
	}
	return true
}

// dropHeld drops the held run of suspect epochs: the timeline did not take them.
func (fl *filter) dropHeld() {
	fl.dropped[dropTimeJump].Add(uint64(len(fl.held)))
	fl.held = fl.held[:0]
}

// moving: a fix without speed counts as moving, so that it is judged by distance rather than dropped as parked.
func (fl *filter) moving(f nmea.Fix) bool {
	return math.IsNaN(f.SpeedKmh) || f.SpeedKmh >= fl.cfg.StopSpeedKmh
}

// Dropped calls fn for each reason with its count.
func (fl *filter) eachDropped(fn func(reason string, n uint64)) {
	for r := range numDropReasons {
		fn(dropNames[r], fl.dropped[r].Load())
	}
}

// distanceM is the great-circle distance between two fixes (haversine, mean earth radius): exact enough for the
// metres a filter compares.
func distanceM(a, b nmea.Fix) float64 {
	const earthRadiusM = 6371008.8
	rad := math.Pi / 180
	dLat := (b.Lat - a.Lat) * rad
	dLon := (b.Lon - a.Lon) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusM * math.Asin(math.Min(1, math.Sqrt(h)))
}

// courseChange is the angle between two courses in degrees, 0..180; 0 when either is unknown.
func courseChange(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) {
		return 0
	}
	d := math.Mod(math.Abs(a-b), 360)
	if d > 180 {
		d = 360 - d
	}
	return d
}
