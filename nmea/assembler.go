package nmea

import (
	"log/slog"
	"math"
	"time"

	gonmea "github.com/adrianmo/go-nmea"
)

// civil is a calendar date in UTC.
type civil struct{ y, m, d int }

func (c civil) ok() bool { return c.y > 0 && c.m >= 1 && c.m <= 12 && c.d >= 1 && c.d <= 31 }

const dayMs = 24 * 3600 * 1000

// Position sources, in order of preference when several are valid.
const (
	srcNone = iota
	srcGLL
	srcRMC
	srcGNS
	srcGGA
)

// epoch accumulates what the sentences of one time of day said.
type epoch struct {
	tod      int // ms since midnight, -1 if none yet
	date     civil
	zdaDate  civil
	src      int
	lat, lon float64
	speed    float64
	course   float64
	alt      float64
	quality  int
	sats     int
	hdop     float64
	gsaSats  int
	gsaHDOP  float64
	rmcQ     int  // faaQuality of the last valid RMC's FAA mode (1 if none)
	noFix    bool // some sentence said explicitly there is no fix
	lastKey  sentKey
	counts   keyCounts
}

func (e *epoch) reset() {
	counts := e.counts
	counts.reset()
	*e = epoch{
		tod: -1, speed: math.NaN(), course: math.NaN(), alt: math.NaN(),
		quality: -1, sats: -1, hdop: math.NaN(), gsaSats: -1, gsaHDOP: math.NaN(),
		rmcQ: 1, counts: counts,
	}
}

// keyCounts counts the sentences of an epoch by key. A cycle has a handful
// of keys: they live in an array searched in order, which costs less than
// hashing; a map takes any beyond it.
type keyCounts struct {
	keys  [16]sentKey
	n     [16]int
	used  int
	spill map[sentKey]int
}

func (c *keyCounts) reset() {
	c.used = 0
	clear(c.spill)
}

// inc adds one to key's count and returns it.
func (c *keyCounts) inc(key sentKey) int {
	for i := 0; i < c.used; i++ {
		if c.keys[i] == key {
			c.n[i]++
			return c.n[i]
		}
	}
	if c.used < len(c.keys) {
		c.keys[c.used], c.n[c.used] = key, 1
		c.used++
		return 1
	}
	if c.spill == nil {
		c.spill = make(map[sentKey]int)
	}
	c.spill[key]++
	return c.spill[key]
}

func (c *keyCounts) get(key sentKey) int {
	for i := 0; i < c.used; i++ {
		if c.keys[i] == key {
			return c.n[i]
		}
	}
	return c.spill[key]
}

// enderKey names a sentence's position in the cycle: talker+type and its
// occurrence in the epoch ("GNGSA#2"), so a receiver that sends two GSA per
// cycle is not cut after the first.
type enderKey struct {
	key sentKey
	n   int
}

type closeReason uint8

const (
	closeTimeChange closeReason = iota
	closeEnder
	closeFlush
)

// assembler groups parsed sentences into epochs and hands each epoch's fix
// to emit. It knows nothing of bytes or parsing, so it can be driven alone.
type assembler struct {
	emit func(Fix)
	c    *Counters
	log  *slog.Logger // nil: nothing is logged

	cur epoch // the open epoch (cur.tod >= 0) or untimed data waiting for its epoch's time

	lastClosed int // tod of the last closed epoch, -1 if none

	lastDate    civil // date of the last epoch that carried one
	lastDateTod int

	// undated is the newest fix of an epoch closed before any date was
	// known (a receiver that sends GGA before its first RMC). The next
	// epoch that carries a date dates it and hands it on first; an older
	// one it replaces is counted in NoDate.
	undated    Fix
	undatedTod int
	hasUndated bool

	candidate enderKey // last key before the previous time change
	ender     enderKey // learned cycle ender, zero key if not (yet) known
}

// newAssembler returns an assembler that counts in c and hands fixes to
// emit; log may be nil.
func newAssembler(emit func(Fix), c *Counters, log *slog.Logger) assembler {
	a := assembler{emit: emit, c: c, log: log, lastClosed: -1}
	a.cur.reset()
	return a
}

func todOf(t gonmea.Time) (int, bool) {
	if !t.Valid || t.Hour > 23 || t.Minute > 59 || t.Second > 60 {
		return 0, false
	}
	return ((t.Hour*60+t.Minute)*60+t.Second)*1000 + t.Millisecond, true
}

// add files one parsed sentence into its epoch.
func (a *assembler) add(m *msg) {
	tod, timed := -1, false
	switch m.typ {
	case msgRMC, msgGGA, msgGNS, msgGLL, msgZDA:
		tod, timed = todOf(m.time)
	case msgVTG, msgGSA, msgGSV:
	default:
		return // not part of a fix, and not a cycle marker
	}
	if timed && tod != a.cur.tod {
		if a.cur.tod >= 0 {
			a.closeEpoch(closeTimeChange)
		}
		if tod == a.lastClosed {
			// The epoch was closed by a cycle ender that was not the last
			// sentence after all: forget it, and drop this straggler.
			a.c.late.Add(1)
			a.ender = enderKey{}
			return
		}
		a.cur.tod = tod
	}
	a.apply(m)
	key := m.key
	n := a.cur.counts.inc(key)
	a.cur.lastKey = key
	if a.cur.tod >= 0 && a.ender.key == key && a.ender.n == n {
		a.closeEpoch(closeEnder)
	}
}

func (a *assembler) apply(m *msg) {
	e := &a.cur
	switch m.typ {
	case msgRMC:
		if m.present(6) && math.IsNaN(e.speed) {
			e.speed = m.speed * 1.852
		}
		if m.present(7) {
			e.course = m.course
		}
		if m.date.Valid {
			y := 2000 + m.date.YY
			if m.date.YY >= 80 {
				y = 1900 + m.date.YY
			}
			e.date = civil{y, m.date.MM, m.date.DD}
		}
		if !m.valid || m.quality == 0 || !m.present(2) || !m.present(4) {
			e.noFix = true
			return
		}
		e.rmcQ = m.quality
		a.position(srcRMC, m.lat, m.lon)
	case msgGGA:
		q := m.quality
		if q <= 0 || !m.present(1) || !m.present(3) {
			e.noFix = true
			return
		}
		if m.present(6) && m.sats == 0 && q != 6 {
			// A satellite fix from no satellites is a stale position
			// (Hemisphere repeats its last one while it reacquires);
			// only dead reckoning (6) works without satellites.
			e.noFix = true
			return
		}
		e.quality = q
		if m.present(6) {
			e.sats = int(m.sats)
		}
		if m.present(7) {
			e.hdop = m.hdop
		}
		if m.present(8) {
			e.alt = m.alt
		}
		a.position(srcGGA, m.lat, m.lon)
	case msgGNS:
		q := m.quality
		if q == 0 || !m.present(1) || !m.present(3) {
			e.noFix = true
			return
		}
		if e.quality < 0 || a.cur.src < srcGGA {
			e.quality = q
		}
		if m.present(6) && e.sats < 0 {
			e.sats = int(m.sats)
		}
		if m.present(7) && math.IsNaN(e.hdop) {
			e.hdop = m.hdop
		}
		if m.present(8) && math.IsNaN(e.alt) {
			e.alt = m.alt
		}
		a.position(srcGNS, m.lat, m.lon)
	case msgGLL:
		if !m.valid || m.quality == 0 || !m.present(0) || !m.present(2) {
			e.noFix = true
			return
		}
		a.position(srcGLL, m.lat, m.lon)
	case msgVTG:
		if math.IsNaN(e.course) && m.present(0) {
			e.course = m.course
		}
		if math.IsNaN(e.speed) {
			switch {
			case m.present(6):
				e.speed = m.kph
			case m.present(4):
				e.speed = m.speed * 1.852
			}
		}
	case msgGSA:
		if m.fixNone {
			return
		}
		if e.gsaSats < 0 {
			e.gsaSats = 0
		}
		e.gsaSats += int(m.sats)
		if m.present(15) {
			e.gsaHDOP = m.hdop
		}
	case msgZDA:
		if m.year > 0 {
			e.zdaDate = civil{int(m.year), int(m.month), int(m.day)}
		}
	}
}

// position records a valid position if src is preferred to what we have.
func (a *assembler) position(src int, lat, lon float64) {
	if src >= a.cur.src {
		a.cur.src, a.cur.lat, a.cur.lon = src, lat, lon
	}
}

// closeEpoch ends the open epoch: delivers its fix or counts why not, and
// learns the cycle ender.
func (a *assembler) closeEpoch(why closeReason) {
	e := &a.cur
	if e.tod < 0 {
		if why == closeFlush {
			e.reset()
		}
		return
	}
	switch why {
	case closeTimeChange:
		k := enderKey{e.lastKey, e.counts.get(e.lastKey)}
		if a.ender.key != (sentKey{}) && a.ender != k {
			a.ender = enderKey{} // the receiver changed its cycle
		}
		if a.ender.key == (sentKey{}) && k == a.candidate {
			a.ender = k
			if debugOn(a.log) {
				a.log.Debug("nmea cycle ender learned", "sentence", k.key.String(), "nth", k.n)
			}
		}
		a.candidate = k
	}
	a.lastClosed = e.tod
	if f, ok := a.fix(); ok {
		a.c.fixes.Add(1)
		a.emit(f)
	}
	e.reset()
}

// fix builds the epoch's fix; false if it has none (counted).
func (a *assembler) fix() (Fix, bool) {
	e := &a.cur
	date, dsrc := e.zdaDate, DateZDA
	if !date.ok() {
		date, dsrc = e.date, DateRMC
	}
	if date.ok() {
		// Learnt from no-fix epochs too: a receiver that sends ZDA in
		// every other epoch dates the next fix with it.
		a.lastDate, a.lastDateTod = date, e.tod
		if a.hasUndated {
			a.hasUndated = false
			f := a.undated
			d := date
			if a.undatedTod > e.tod {
				d.d-- // the undated epoch was before midnight; time.Date normalises day 0
			}
			f.Time = time.Date(d.y, time.Month(d.m), d.d, 0, 0, 0, 0, time.UTC).
				Add(time.Duration(a.undatedTod) * time.Millisecond)
			f.DateSource = DateCarried
			a.c.fixes.Add(1)
			a.emit(f)
		}
	}
	if e.src == srcNone {
		a.c.noFix.Add(1)
		return Fix{}, false
	}
	if !date.ok() && a.lastDate.ok() {
		date, dsrc = a.lastDate, DateCarried
		if e.tod < a.lastDateTod-dayMs/2 {
			// The time of day wrapped past midnight since the last date.
			t := time.Date(date.y, time.Month(date.m), date.d+1, 0, 0, 0, 0, time.UTC)
			date = civil{t.Year(), int(t.Month()), t.Day()}
		}
		a.lastDate, a.lastDateTod = date, e.tod
	}
	f := Fix{
		Lat: e.lat, Lon: e.lon,
		SpeedKmh: e.speed, CourseDeg: e.course, AltM: e.alt,
		Quality: e.quality, Sats: e.sats, HDOP: e.hdop,
		DateSource: dsrc,
	}
	if f.Quality < 0 {
		f.Quality = e.rmcQ
		if f.Quality == 0 {
			f.Quality = 1
		}
	}
	if f.Sats < 0 {
		f.Sats = e.gsaSats
	}
	if math.IsNaN(f.HDOP) {
		f.HDOP = e.gsaHDOP
	}
	if !date.ok() {
		if a.hasUndated {
			a.c.noDate.Add(1)
		}
		a.undated, a.undatedTod, a.hasUndated = f, e.tod, true
		return Fix{}, false
	}
	f.Time = time.Date(date.y, time.Month(date.m), date.d, 0, 0, 0, 0, time.UTC).
		Add(time.Duration(e.tod) * time.Millisecond)
	return f, true
}
