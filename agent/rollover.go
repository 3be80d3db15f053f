package main

import (
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

// gpsEra is 1024 GPS weeks, what a 10-bit week number counts before it wraps. A receiver with the week-number
// rollover bug (firmware that places the week in a fixed 1024-week window) reports dates whole eras in the past,
// consistently, from the day its window ends.
const gpsEra = 1024 * 7 * 24 * time.Hour

// gpsEpoch is the start of GPS time: no receiver's week count can give a date before it.
var gpsEpoch = time.Date(1980, time.January, 6, 0, 0, 0, 0, time.UTC)

// buildEpoch is the time of the build in Unix seconds, set at build time with
// -ldflags "-X main.buildEpoch=$(SOURCE_DATE_EPOCH)": the Makefile and cross builds pass the last commit's time,
// so a rebuild of the same commit gives the same bytes. Empty in `go build`, `go run` and tests.
var buildEpoch string

// fallbackBuildDate is the build date when buildEpoch is unset or unreadable: a day before this code was written.
// It only needs to be no later than any real date the binary sees; an older one narrows the years in which the
// rollover correction is right (gpsEra after it).
var fallbackBuildDate = time.Date(2026, time.November, 28, 0, 0, 0, 0, time.UTC)

// buildDate is the date the rollover correction works from: no real GNSS date is before the binary was built.
func buildDate() time.Time {
	if s, err := strconv.ParseInt(buildEpoch, 10, 64); err == nil && s > 0 {
		return time.Unix(s, 0).UTC()
	}
	return fallbackBuildDate
}

// weekRollover corrects dates a receiver with the week-number rollover bug reports, as gpsd does: a date before
// notBefore (the build date) and after gpsEpoch is moved forward by the whole eras that bring it to notBefore or
// later. It cannot tell such a receiver from a capture older than the build replayed into the daemon (both are
// corrected; `gps-agent decode` corrects only when asked). The first correction of a run is logged; every one is
// counted. Used from the receiver's goroutine; fixed may be read from any.
type weekRollover struct {
	notBefore time.Time
	log       *slog.Logger // nil: no log
	logged    bool
	fixed     atomic.Uint64 // fixes whose date was corrected
}

// fix returns f with its date corrected.
func (r *weekRollover) fix(f nmea.Fix) nmea.Fix {
	if !f.Time.Before(r.notBefore) || f.Time.Before(gpsEpoch) {
		return f
	}
	eras := int64((r.notBefore.Sub(f.Time) + gpsEra - 1) / gpsEra) // both after gpsEpoch: a few eras, no overflow
	reported := f.Time
	f.Time = f.Time.Add(time.Duration(eras) * gpsEra)
	r.fixed.Add(1)
	if !r.logged && r.log != nil {
		r.log.Warn("GNSS date corrected for the GPS week-number rollover", "reported", reported, "corrected", f.Time,
			"weeks", eras*1024, "hint", "the receiver's firmware has the rollover bug (update it), or a capture "+
				"older than this build is being replayed; later corrections are only counted (clock week_rollover_fixes)")
		r.logged = true
	}
	return f
}
