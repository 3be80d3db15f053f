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

// Position sources, in order of preference when several are valid, and of
// trust when they disagree on whether there is a fix (see epoch.state).
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
	said     int  // the most trusted source that stated the fix status (srcNone: none did)
	fixSaid  bool // what it stated: a fix (its position is lat, lon) or none
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

// state records that src stated whether there is a fix. When the sentences
// of an epoch disagree, the most trusted one that states it decides (GGA,
// then GNS, RMC, GLL: the order positions are preferred in), whatever their
// order; of one source, the last. GSA and VTG never decide, and a field
// left empty states nothing.
func (e *epoch) state(src int, fix bool) {
	if src >= e.said {
		e.said, e.fixSaid = src, fix
	}
}

// hasFix reports whether the epoch has a fix: its most trusted statement
// says so (and gave the position).
func (e *epoch) hasFix() bool { return e.said != srcNone && e.fixSaid }

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

// closeReason says why an epoch closed; the zero value: it has not.
type closeReason uint8

const (
	stillOpen       closeReason = iota
	closeTimeChange             // the next time of day arrived
	closeEnder                  // its learned cycle ender arrived
	closeIdle                   // the receiver fell silent before the ender (fallback)
	closeFlush                  // end of input, or the device closed
)

// assembler groups parsed sentences into epochs and hands each epoch's fix
// to emit. It knows nothing of bytes or parsing, so it can be driven alone.
//
// An epoch runs from a sentence with a new time of day to the next one:
// untimed sentences (VTG, GSA, GSV) belong to the epoch of the last timed
// one. Its fix is handed on when the epoch closes, by the earliest of its
// cycle ender, the next time of day, and the idle flush; a closed epoch
// stays cur until the next time of day, so that what still comes of it is
// neither taken for the next epoch nor lost to learning the ender.
type assembler struct {
	emit func(Fix)
	c    *Counters
	log  *slog.Logger // nil: nothing is logged

	cur    epoch       // the epoch of the last timed sentence; before the first, untimed data waiting for it (tod -1)
	closed closeReason // why cur closed, stillOpen if it has not

	lastDate    civil // date of the last epoch that carried one
	lastDateTod int

	// undated is the newest fix of an epoch closed before any date was
	// known (a receiver that sends GGA before its first RMC). The next
	// epoch that carries a date dates it and hands it on first; an older
	// one it replaces is counted in NoDate.
	undated    Fix
	undatedTod int
	hasUndated bool

	candidate enderKey // the last sentence before the previous time change
	ender     enderKey // learned cycle ender, zero key if not (yet) known
}

// newAssembler returns an assembler that counts in c and hands fixes to
// emit; log may be nil.
func newAssembler(emit func(Fix), c *Counters, log *slog.Logger) assembler {
	a := assembler{emit: emit, c: c, log: log}
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
	switch {
	case timed && tod != a.cur.tod:
		a.newTime(tod)
	case timed && a.closed == closeEnder:
		// A timed sentence of an epoch its ender closed: the ender was
		// not the last sentence after all. Its fix is out; forget the
		// ender (relearned at the next time changes) and count the loss.
		a.c.late.Add(1)
		a.ender = enderKey{}
	}
	n := a.cur.counts.inc(m.key)
	a.cur.lastKey = m.key
	if a.closed != stillOpen {
		return // its epoch's fix is out: the sentence only marks the cycle
	}
	a.apply(m)
	if a.cur.tod >= 0 && a.ender == (enderKey{m.key, n}) {
		a.closeEpoch(closeEnder)
	}
}

// newTime starts the epoch of a new time of day. The sentence before it
// ended the previous cycle, however that epoch closed: the cycle ender is
// learned from it at any rate, also when the idle flush closed the epoch
// long before (a 1 Hz receiver).
func (a *assembler) newTime(tod int) {
	e := &a.cur
	if e.tod >= 0 {
		a.learn(enderKey{e.lastKey, e.counts.get(e.lastKey)})
		if a.closed == stillOpen {
			a.closeEpoch(closeTimeChange)
		}
		e.reset()
	}
	// Untimed data before the first time of day is this epoch's.
	e.tod, a.closed = tod, stillOpen
}

// learn takes k, the last sentence of a cycle: two cycles in a row that end
// on the same sentence make it the ender. One cycle that ends otherwise (its
// ender lost to a bad checksum, a GSV block the receiver sends every few
// epochs) does not unlearn it; a timed straggler does (add).
func (a *assembler) learn(k enderKey) {
	if k == a.candidate && k != a.ender {
		a.ender = k
		if debugOn(a.log) {
			a.log.Debug("nmea cycle ender learned", "sentence", k.key.String(), "nth", k.n)
		}
	}
	a.candidate = k
}

// enderKnown reports whether the cycle ender is learned.
func (a *assembler) enderKnown() bool { return a.ender.key != (sentKey{}) }

// idle hands on the open epoch's fix when the receiver has fallen silent in
// the middle of it. An epoch without a position stays open: what follows may
// still give it one. Later sentences of the epoch are absorbed (add).
func (a *assembler) idle() {
	if a.cur.tod >= 0 && a.closed == stillOpen && a.cur.hasFix() {
		a.closeEpoch(closeIdle)
	}
}

// flush closes the epoch for good, at end of input: what comes next starts
// afresh.
func (a *assembler) flush() {
	if a.cur.tod >= 0 && a.closed == stillOpen {
		a.closeEpoch(closeFlush)
	}
	a.cur.reset()
	a.closed = stillOpen
}

// apply takes what one sentence of the open epoch says.
func (a *assembler) apply(m *msg) {
	switch m.typ {
	case msgRMC:
		a.applyRMC(m)
	case msgGGA:
		a.applyGGA(m)
	case msgGNS:
		a.applyGNS(m)
	case msgGLL:
		a.applyGLL(m)
	default:
		a.applyOther(m)
	}
}

// applyRMC: speed, course and date always; position when its status says fix.
func (a *assembler) applyRMC(m *msg) {
	e := &a.cur
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
	switch {
	case !m.present(1):
		// no status: RMC states nothing
	case !m.valid || m.quality == 0:
		e.state(srcRMC, false)
	case m.present(2) && m.present(4):
		e.rmcQ = m.quality
		e.state(srcRMC, true)
		a.position(srcRMC, m.lat, m.lon)
	}
}

// applyGGA: the fix quality, satellites, HDOP and altitude of a fix.
func (a *assembler) applyGGA(m *msg) {
	e := &a.cur
	q := m.quality
	switch {
	case q < 0:
		return // no quality: GGA states nothing
	case q == 0, m.present(6) && m.sats == 0 && q != 6:
		// A satellite fix from no satellites is a stale position
		// (Hemisphere repeats its last one while it reacquires);
		// only dead reckoning (6) works without satellites.
		e.state(srcGGA, false)
		return
	case !m.present(1) || !m.present(3):
		return // a fix without a position
	}
	e.state(srcGGA, true)
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
}

// applyGNS: as GGA, but what GGA gave wins.
func (a *assembler) applyGNS(m *msg) {
	e := &a.cur
	q := m.quality
	switch {
	case !m.present(5):
		return // no mode: GNS states nothing
	case q == 0:
		e.state(srcGNS, false)
		return
	case !m.present(1) || !m.present(3):
		return
	}
	e.state(srcGNS, true)
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
}

// applyGLL: a position, the least trusted.
func (a *assembler) applyGLL(m *msg) {
	e := &a.cur
	switch {
	case !m.present(5):
		// no status: GLL states nothing
	case !m.valid || m.quality == 0:
		e.state(srcGLL, false)
	case m.present(0) && m.present(2):
		e.state(srcGLL, true)
		a.position(srcGLL, m.lat, m.lon)
	}
}

// applyOther takes what VTG, GSA and ZDA add to a fix; none states whether
// there is one.
func (a *assembler) applyOther(m *msg) {
	e := &a.cur
	switch m.typ {
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

// closeEpoch closes the open epoch: hands its fix on, or counts why not.
func (a *assembler) closeEpoch(why closeReason) {
	a.closed = why
	if f, ok := a.fix(); ok {
		a.c.fixes.Add(1)
		a.emit(f)
	}
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
	if !e.hasFix() {
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
