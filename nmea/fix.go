package nmea

import (
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"
)

// Fix is one position per receiver epoch.
//
// Unknown float fields are NaN and unknown int fields are -1: "empty" is kept
// apart from "zero" (a speed of 0 is a truck at a red light).
type Fix struct {
	Time      time.Time // GNSS UTC time of the epoch, date included (from RMC or ZDA)
	Lat, Lon  float64   // decimal degrees, WGS84, south/west negative
	SpeedKmh  float64   // speed over ground, NaN if unknown
	CourseDeg float64   // true course over ground, NaN if unknown
	AltM      float64   // altitude above mean sea level (GGA/GNS), NaN if unknown
	Quality   int       // GGA fix quality 0..8 (1 GPS, 2 DGPS, 4 RTK fixed, 5 RTK float, 6 dead reckoning); RMC-only fix -> 1 (or its FAA mode)
	Sats      int       // satellites used, -1 if unknown
	HDOP      float64   // horizontal dilution of precision, NaN if unknown

	// DateSource says where the date of Time came from: [DateRMC],
	// [DateZDA] (ZDA wins when an epoch has both: it carries 4 digits of
	// year), or [DateCarried] (the epoch had no date; the last known date
	// was carried forward, and advanced by a day when the time of day
	// wrapped past midnight).
	DateSource string
}

// Values of [Fix.DateSource].
const (
	DateRMC     = "rmc"
	DateZDA     = "zda"
	DateCarried = "carried"
)

// String formats the fix for logs and the decode command.
func (f Fix) String() string {
	return fmt.Sprintf("%s %.7f,%.7f speed=%s course=%s alt=%s q=%d sats=%d hdop=%s",
		f.Time.Format("2006-01-02T15:04:05.000Z07:00"), f.Lat, f.Lon,
		fmtFloat(f.SpeedKmh, 1), fmtFloat(f.CourseDeg, 1), fmtFloat(f.AltM, 1),
		f.Quality, f.Sats, fmtFloat(f.HDOP, 2))
}

func fmtFloat(v float64, prec int) string {
	if math.IsNaN(v) {
		return "?"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// Counters counts what the decoder saw, by reason. All methods are safe for
// concurrent use: the decoder increments while the agent's status page reads.
// The zero value is ready to use.
type Counters struct {
	sentences    atomic.Uint64
	fixes        atomic.Uint64
	badChecksum  atomic.Uint64
	overlong     atomic.Uint64
	garbageBytes atomic.Uint64
	broken       atomic.Uint64
	unknownType  atomic.Uint64
	unparsable   atomic.Uint64
	noFix        atomic.Uint64
	noDate       atomic.Uint64
	late         atomic.Uint64
	reconnects   atomic.Uint64
	silences     atomic.Uint64
	lastSentence atomic.Int64 // gateway clock, unix ns, of the last checksummed sentence; 0 if none
}

// LastSentence returns when (gateway clock) the last sentence with a valid
// checksum arrived, zero if none has: the agent's "receiver alive" signal.
func (c *Counters) LastSentence() time.Time {
	if ns := c.lastSentence.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Stats is a point-in-time copy of [Counters].
type Stats struct {
	Sentences    uint64 `json:"sentences"`     // sentences with a valid checksum read, or of a type go-nmea knows that no fix uses (counted, not parsed)
	Fixes        uint64 `json:"fixes"`         // fixes delivered to the callback
	BadChecksum  uint64 `json:"bad_checksum"`  // sentences with a missing or wrong checksum
	Overlong     uint64 `json:"overlong"`      // sentences longer than MaxSentence bytes, dropped
	GarbageBytes uint64 `json:"garbage_bytes"` // bytes outside any sentence (binary noise, NUL, comments)
	Broken       uint64 `json:"broken"`        // sentences cut by a binary byte or a new '$' before their end
	UnknownType  uint64 `json:"unknown_type"`  // valid sentences of a type go-nmea does not know (mostly proprietary $P...)
	Unparsable   uint64 `json:"unparsable"`    // valid checksum but go-nmea rejected a field of a type a fix uses
	NoFix        uint64 `json:"no_fix"`        // epochs without a valid position (RMC V, GGA quality 0, no lat/lon, ...)
	NoDate       uint64 `json:"no_date"`       // epochs with a fix but no date known yet (no RMC/ZDA seen)
	Late         uint64 `json:"late"`          // timed sentences after the cycle ender that closed their epoch, ignored (the ender is relearned)
	Reconnects   uint64 `json:"reconnects"`    // times the Receiver reopened its device
	Silences     uint64 `json:"silences"`      // episodes of an open device sending no valid sentence for Receiver.SilenceAfter

	LastSentence time.Time `json:"last_sentence"` // gateway clock of the last checksummed sentence, zero if none
}

// Dropped is the sum of the counters that mean input was lost: bad
// checksum, overlong, broken, unparsable, no date and late.
func (s Stats) Dropped() uint64 {
	return s.BadChecksum + s.Overlong + s.Broken + s.Unparsable + s.NoDate + s.Late
}

// Snapshot returns the current values.
func (c *Counters) Snapshot() Stats {
	return Stats{
		Sentences:    c.sentences.Load(),
		Fixes:        c.fixes.Load(),
		BadChecksum:  c.badChecksum.Load(),
		Overlong:     c.overlong.Load(),
		GarbageBytes: c.garbageBytes.Load(),
		Broken:       c.broken.Load(),
		UnknownType:  c.unknownType.Load(),
		Unparsable:   c.unparsable.Load(),
		NoFix:        c.noFix.Load(),
		NoDate:       c.noDate.Load(),
		Late:         c.late.Load(),
		Reconnects:   c.reconnects.Load(),
		Silences:     c.silences.Load(),
		LastSentence: c.LastSentence(),
	}
}

// Each calls fn for every counter, in a stable order, with a snake_case name
// fit for metrics and JSON.
func (s Stats) Each(fn func(name string, n uint64)) {
	fn("sentences", s.Sentences)
	fn("fixes", s.Fixes)
	fn("bad_checksum", s.BadChecksum)
	fn("overlong", s.Overlong)
	fn("garbage_bytes", s.GarbageBytes)
	fn("broken", s.Broken)
	fn("unknown_type", s.UnknownType)
	fn("unparsable", s.Unparsable)
	fn("no_fix", s.NoFix)
	fn("no_date", s.NoDate)
	fn("late", s.Late)
	fn("reconnects", s.Reconnects)
	fn("silences", s.Silences)
}

// String returns "name=n" pairs separated by spaces.
func (s Stats) String() string {
	var b strings.Builder
	s.Each(func(name string, n uint64) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", name, n)
	})
	return b.String()
}
