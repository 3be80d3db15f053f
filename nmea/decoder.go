package nmea

import (
	"errors"
	"io"
	"log/slog"
	"math"
	"strconv"
	"time"

	gonmea "github.com/adrianmo/go-nmea"
)

// MaxSentence bounds one sentence in bytes, '$' to the last checksum digit.
// NMEA 0183 allows 82 characters including CR LF; real receivers (u-blox
// GSV with many signals, proprietary $P sentences) exceed that a little, so
// we allow three times as much. A longer run is noise and dropped whole.
const MaxSentence = 256

type frameState uint8

const (
	frameIdle     frameState = iota // between sentences: discard until '$' or '!'
	frameIn                         // inside a sentence
	frameOverlong                   // inside a sentence longer than MaxSentence: discard to its end
)

// Decoder frames raw receiver bytes into sentences, verifies and parses them,
// and assembles one [Fix] per receiver epoch, which it hands to onFix.
//
// A Decoder is not safe for concurrent use. onFix is called synchronously
// from Write or Flush and must not call back into the Decoder.
type Decoder struct {
	onFix  func(Fix)
	c      *Counters
	log    *slog.Logger
	parser gonmea.SentenceParser

	// framing
	state frameState
	line  [MaxSentence]byte
	n     int

	asm assembler

	valid int              // sentences with a valid checksum, for auto-baud
	now   func() time.Time // gateway clock of LastSentence
}

// NewDecoder returns a decoder that calls onFix for every fix. c may be nil
// (counts are then kept privately); log may be nil (nothing is logged).
func NewDecoder(onFix func(Fix), c *Counters, log *slog.Logger) *Decoder {
	if c == nil {
		c = new(Counters)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if onFix == nil {
		onFix = func(Fix) {}
	}
	d := &Decoder{onFix: onFix, c: c, log: log, now: time.Now}
	// The checksum is verified by the framer, which counts it apart from
	// field errors; go-nmea would only repeat the work.
	d.parser.CheckCRC = func(gonmea.BaseSentence, string) error { return nil }
	d.parser.OnBaseSentence = tolerate
	d.asm.init(d)
	return d
}

// Write feeds raw bytes from the receiver, in any chunking. It never returns
// an error: bad input is dropped and counted.
func (d *Decoder) Write(p []byte) (int, error) {
	for _, b := range p {
		switch {
		case b == '\r' || b == '\n':
			switch d.state {
			case frameIn:
				d.sentence(d.line[:d.n])
			case frameOverlong:
				d.c.overlong.Add(1)
			}
			d.state = frameIdle
		case b == '$' || b == '!':
			switch d.state {
			case frameIn:
				d.c.broken.Add(1)
			case frameOverlong:
				d.c.overlong.Add(1)
			}
			d.state = frameIn
			d.line[0] = b
			d.n = 1
		case d.state == frameIdle:
			d.c.garbageBytes.Add(1)
		case b < 0x20 || b > 0x7e:
			// Binary noise inside a sentence: what we have is corrupt.
			if d.state == frameIn {
				d.c.broken.Add(1)
			} else {
				d.c.overlong.Add(1)
			}
			d.c.garbageBytes.Add(1)
			d.state = frameIdle
		case d.state == frameOverlong:
		case d.n == len(d.line):
			d.state = frameOverlong
		default:
			d.line[d.n] = b
			d.n++
		}
	}
	return len(p), nil
}

// Flush closes the pending epoch, delivering its fix if it has one. Call it
// at end of input, or when the receiver has been silent longer than its
// cycle. Any partial sentence is kept: more bytes may complete it.
func (d *Decoder) Flush() {
	d.asm.closeEpoch(closeFlush)
}

// Decode reads r to EOF, calling onFix for each fix in order, and returns the
// counts. The error is r's, never one about the content.
func Decode(r io.Reader, onFix func(Fix)) (Stats, error) {
	var c Counters
	d := NewDecoder(onFix, &c, nil)
	buf := make([]byte, 32*1024)
	for {
		n, err := r.Read(buf)
		d.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d.Flush()
			return c.Snapshot(), err
		}
	}
	// A last sentence without its line end is complete when its checksum is.
	if d.state == frameIn {
		d.Write([]byte{'\n'})
	}
	d.Flush()
	return c.Snapshot(), nil
}

// sentence handles one framed candidate sentence, '$' included, no CR/LF.
func (d *Decoder) sentence(line []byte) {
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if !checksumOK(line) {
		d.c.badChecksum.Add(1)
		return
	}
	d.valid++
	d.c.lastSentence.Store(d.now().UnixNano())
	s, err := d.parser.Parse(string(line))
	if err != nil {
		var ns *gonmea.NotSupportedError
		if errors.As(err, &ns) {
			d.c.unknownType.Add(1)
			return
		}
		d.c.unparsable.Add(1)
		d.log.Debug("unparsable nmea sentence", "sentence", string(line), "err", err)
		return
	}
	d.c.sentences.Add(1)
	d.asm.add(s)
}

// tolerate clears fields a Fix never uses before go-nmea parses them, so that
// a receiver's quirk in one of them does not cost the whole sentence (the
// Motorola Oncore sends the RMC magnetic variation direction as "N").
func tolerate(s *gonmea.BaseSentence) error {
	switch s.Type {
	case gonmea.TypeRMC:
		for i := 9; i <= 10 && i < len(s.Fields); i++ { // magnetic variation, direction
			s.Fields[i] = ""
		}
	case gonmea.TypeGGA:
		for i := 9; i < len(s.Fields); i++ { // units, geoid separation, DGPS age and station
			s.Fields[i] = ""
		}
		// Quality 7 (manual input) and 8 (simulator) are positions no
		// satellite measured: no fix for a tracker. go-nmea rejects them as
		// unknown values, which would count them as unparsable.
		if len(s.Fields) > 5 && (s.Fields[5] == "7" || s.Fields[5] == "8") {
			s.Fields[5] = "0"
		}
	}
	return nil
}

// checksumOK reports whether line ends in "*HH" and HH is the XOR of the
// bytes between the start character and the '*'.
func checksumOK(line []byte) bool {
	n := len(line)
	if n < 4 || line[n-3] != '*' {
		return false
	}
	var sum byte
	for _, b := range line[1 : n-3] {
		sum ^= b
	}
	hi, ok1 := unhex(line[n-2])
	lo, ok2 := unhex(line[n-1])
	return ok1 && ok2 && hi<<4|lo == sum
}

func unhex(b byte) (byte, bool) {
	switch {
	case b >= '0' && b <= '9':
		return b - '0', true
	case b >= 'A' && b <= 'F':
		return b - 'A' + 10, true
	case b >= 'a' && b <= 'f':
		return b - 'a' + 10, true
	}
	return 0, false
}

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
	rmcMode  string
	noFix    bool // some sentence said explicitly there is no fix
	lastKey  sentKey
	counts   map[sentKey]int
}

func (e *epoch) reset() {
	counts := e.counts
	clear(counts)
	if counts == nil {
		counts = make(map[sentKey]int)
	}
	*e = epoch{
		tod: -1, speed: math.NaN(), course: math.NaN(), alt: math.NaN(),
		quality: -1, sats: -1, hdop: math.NaN(), gsaSats: -1, gsaHDOP: math.NaN(),
		counts: counts,
	}
}

// enderKey names a sentence's position in the cycle: talker+type and its
// occurrence in the epoch ("GNGSA#2"), so a receiver that sends two GSA per
// cycle is not cut after the first.
type enderKey struct {
	key sentKey
	n   int
}

// sentKey is talker and type ("GNGSA"), a value so that filing a sentence
// allocates nothing. Longer names (proprietary) are cut: a key only has to
// tell the sentences of one receiver's cycle apart.
type sentKey [8]byte

func makeKey(talker, typ string) sentKey {
	var k sentKey
	n := copy(k[:], talker)
	copy(k[n:], typ)
	return k
}

func (k sentKey) String() string {
	n := 0
	for n < len(k) && k[n] != 0 {
		n++
	}
	return string(k[:n])
}

type closeReason uint8

const (
	closeTimeChange closeReason = iota
	closeEnder
	closeFlush
)

// assembler groups parsed sentences into epochs.
type assembler struct {
	d *Decoder

	cur     epoch // the open epoch (cur.tod >= 0) or pending untimed data
	pending bool  // cur holds untimed data waiting for its epoch's time

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

func (a *assembler) init(d *Decoder) {
	a.d = d
	a.cur.reset()
	a.lastClosed = -1
}

func todOf(t gonmea.Time) (int, bool) {
	if !t.Valid || t.Hour > 23 || t.Minute > 59 || t.Second > 60 {
		return 0, false
	}
	return ((t.Hour*60+t.Minute)*60+t.Second)*1000 + t.Millisecond, true
}

// add files one parsed sentence into its epoch.
func (a *assembler) add(s gonmea.Sentence) {
	tod, timed := -1, false
	switch m := s.(type) {
	case gonmea.RMC:
		tod, timed = todOf(m.Time)
	case gonmea.GGA:
		tod, timed = todOf(m.Time)
	case gonmea.GNS:
		tod, timed = todOf(m.Time)
	case gonmea.GLL:
		tod, timed = todOf(m.Time)
	case gonmea.ZDA:
		tod, timed = todOf(m.Time)
	case gonmea.VTG, gonmea.GSA, gonmea.GSV:
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
			a.d.c.late.Add(1)
			a.ender = enderKey{}
			return
		}
		a.cur.tod = tod
		a.pending = false
	}
	if a.cur.tod < 0 {
		a.pending = true
	}
	a.apply(s)
	key := makeKey(s.TalkerID(), s.DataType())
	a.cur.counts[key]++
	a.cur.lastKey = key
	if a.cur.tod >= 0 && a.ender.key == key && a.ender.n == a.cur.counts[key] {
		a.closeEpoch(closeEnder)
	}
}

// field returns the raw text of field i, "" if absent.
func field(s gonmea.BaseSentence, i int) string {
	if i < len(s.Fields) {
		return s.Fields[i]
	}
	return ""
}

func (a *assembler) apply(s gonmea.Sentence) {
	e := &a.cur
	switch m := s.(type) {
	case gonmea.RMC:
		if f := field(m.BaseSentence, 6); f != "" && math.IsNaN(e.speed) {
			e.speed = m.Speed * 1.852
		}
		if f := field(m.BaseSentence, 7); f != "" {
			e.course = m.Course
		}
		if m.Date.Valid {
			y := 2000 + m.Date.YY
			if m.Date.YY >= 80 {
				y = 1900 + m.Date.YY
			}
			e.date = civil{y, m.Date.MM, m.Date.DD}
		}
		valid := m.Validity == gonmea.ValidRMC && faaQuality(m.FFAMode) > 0 &&
			field(m.BaseSentence, 2) != "" && field(m.BaseSentence, 4) != ""
		if !valid {
			e.noFix = true
			return
		}
		e.rmcMode = m.FFAMode
		a.position(srcRMC, m.Latitude, m.Longitude)
	case gonmea.GGA:
		q, err := strconv.Atoi(m.FixQuality)
		if err != nil || q == 0 || field(m.BaseSentence, 1) == "" || field(m.BaseSentence, 3) == "" {
			e.noFix = true
			return
		}
		if field(m.BaseSentence, 6) != "" && m.NumSatellites == 0 && q != 6 {
			// A satellite fix from no satellites is a stale position
			// (Hemisphere repeats its last one while it reacquires);
			// only dead reckoning (6) works without satellites.
			e.noFix = true
			return
		}
		e.quality = q
		if field(m.BaseSentence, 6) != "" {
			e.sats = int(m.NumSatellites)
		}
		if field(m.BaseSentence, 7) != "" {
			e.hdop = m.HDOP
		}
		if field(m.BaseSentence, 8) != "" {
			e.alt = m.Altitude
		}
		a.position(srcGGA, m.Latitude, m.Longitude)
	case gonmea.GNS:
		q := gnsQuality(m.Mode)
		if q == 0 || field(m.BaseSentence, 1) == "" || field(m.BaseSentence, 3) == "" {
			e.noFix = true
			return
		}
		if e.quality < 0 || a.cur.src < srcGGA {
			e.quality = q
		}
		if field(m.BaseSentence, 6) != "" && e.sats < 0 {
			e.sats = int(m.SVs)
		}
		if field(m.BaseSentence, 7) != "" && math.IsNaN(e.hdop) {
			e.hdop = m.HDOP
		}
		if field(m.BaseSentence, 8) != "" && math.IsNaN(e.alt) {
			e.alt = m.Altitude
		}
		a.position(srcGNS, m.Latitude, m.Longitude)
	case gonmea.GLL:
		if m.Validity != gonmea.ValidGLL || faaQuality(m.FFAMode) == 0 ||
			field(m.BaseSentence, 0) == "" || field(m.BaseSentence, 2) == "" {
			e.noFix = true
			return
		}
		a.position(srcGLL, m.Latitude, m.Longitude)
	case gonmea.VTG:
		if math.IsNaN(e.course) && field(m.BaseSentence, 0) != "" {
			e.course = m.TrueTrack
		}
		if math.IsNaN(e.speed) {
			switch {
			case field(m.BaseSentence, 6) != "":
				e.speed = m.GroundSpeedKPH
			case field(m.BaseSentence, 4) != "":
				e.speed = m.GroundSpeedKnots * 1.852
			}
		}
	case gonmea.GSA:
		if m.FixType == gonmea.FixNone {
			return
		}
		if e.gsaSats < 0 {
			e.gsaSats = 0
		}
		e.gsaSats += len(m.SV)
		if field(m.BaseSentence, 15) != "" {
			e.gsaHDOP = m.HDOP
		}
	case gonmea.ZDA:
		if m.Year > 0 {
			e.zdaDate = civil{int(m.Year), int(m.Month), int(m.Day)}
		}
	}
}

// position records a valid position if src is preferred to what we have.
func (a *assembler) position(src int, lat, lon float64) {
	if src >= a.cur.src {
		a.cur.src, a.cur.lat, a.cur.lon = src, lat, lon
	}
}

// gnsQuality maps a GNS mode indicator (one letter per constellation) to a
// GGA quality: the best constellation wins; 0 if none has a fix.
func gnsQuality(mode []string) int {
	best := 0
	for _, c := range mode {
		q := faaQuality(c)
		if q > best || (best == 6 && q > 0) {
			best = q
		}
	}
	return best
}

// faaQuality maps an FAA mode indicator (RMC, GNS) to a GGA fix quality.
func faaQuality(mode string) int {
	switch mode {
	case gonmea.FAAModeDataNotValid, gonmea.FAAModeManualInput, gonmea.FAAModeSimulated:
		return 0
	case gonmea.FAAModeDifferential:
		return 2
	case gonmea.FAAModePrecise:
		return 3
	case gonmea.FAAModeRTKInteger:
		return 4
	case gonmea.FAAModeRTKFloat:
		return 5
	case gonmea.FAAModeEstimated:
		return 6
	}
	return 1 // "A", or no mode (NMEA before 2.3)
}

// closeEpoch ends the open epoch: delivers its fix or counts why not, and
// learns the cycle ender.
func (a *assembler) closeEpoch(why closeReason) {
	e := &a.cur
	if e.tod < 0 {
		if why == closeFlush {
			e.reset()
			a.pending = false
		}
		return
	}
	switch why {
	case closeTimeChange:
		k := enderKey{e.lastKey, e.counts[e.lastKey]}
		if a.ender.key != (sentKey{}) && a.ender != k {
			a.ender = enderKey{} // the receiver changed its cycle
		}
		if a.ender.key == (sentKey{}) && k == a.candidate {
			a.ender = k
			a.d.log.Debug("nmea cycle ender learned", "sentence", k.key.String(), "nth", k.n)
		}
		a.candidate = k
	}
	a.lastClosed = e.tod
	if f, ok := a.fix(); ok {
		a.d.c.fixes.Add(1)
		a.d.onFix(f)
	}
	e.reset()
	a.pending = false
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
			a.d.c.fixes.Add(1)
			a.d.onFix(f)
		}
	}
	if e.src == srcNone {
		a.d.c.noFix.Add(1)
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
		f.Quality = faaQuality(e.rmcMode)
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
			a.d.c.noDate.Add(1)
		}
		a.undated, a.undatedTod, a.hasUndated = f, e.tod, true
		return Fix{}, false
	}
	f.Time = time.Date(date.y, time.Month(date.m), date.d, 0, 0, 0, 0, time.UTC).
		Add(time.Duration(e.tod) * time.Millisecond)
	return f, true
}
