package nmea

import (
	"bytes"
	"context"
	"encoding/binary"
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
	own    Counters     // c when the caller passes none
	log    *slog.Logger // nil: nothing is logged
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
	if onFix == nil {
		onFix = func(Fix) {}
	}
	d := &Decoder{onFix: onFix, c: c, log: log, now: time.Now}
	if c == nil {
		d.c = &d.own
	}
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
	valid := d.valid
	for i := 0; i < len(p); i++ {
		if d.state == frameIn {
			// The body of a sentence: take the run of plain bytes at once.
			j := i
			for j < len(p) && plain[p[j]] {
				j++
			}
			if run := p[i:j]; d.n+len(run) <= len(d.line) {
				d.n += copy(d.line[d.n:], run)
			} else {
				d.state = frameOverlong
			}
			if i = j; i == len(p) {
				break
			}
		}
		b := p[i]
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
	if d.valid != valid {
		// One clock read per chunk, not per sentence: the bytes of one
		// read arrived together.
		d.c.lastSentence.Store(d.now().UnixNano())
	}
	return len(p), nil
}

// plain are the bytes that may stand inside a sentence: printable ASCII
// but the start characters. Read only.
var plain = func() (t [256]bool) {
	for b := 0x20; b <= 0x7e; b++ {
		t[b] = b != '$' && b != '!'
	}
	return t
}()

// Flush closes the pending epoch, delivering its fix if it has one. Call it
// at end of input, or when the receiver has been silent longer than its
// cycle. Any partial sentence is kept: more bytes may complete it.
func (d *Decoder) Flush() {
	d.asm.closeEpoch(closeFlush)
}

// Decode reads r to EOF, calling onFix for each fix in order, and returns the
// counts. The error is r's, never one about the content.
func Decode(r io.Reader, onFix func(Fix)) (Stats, error) {
	d := NewDecoder(onFix, nil, nil)
	c := d.c
	// io.Copy lets an in-memory reader (bytes.Reader, strings.Reader)
	// write itself in one call, with no buffer of ours; it returns r's
	// error only, as Write never fails.
	if _, err := io.Copy(d, r); err != nil {
		d.Flush()
		return c.Snapshot(), err
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
	talker, typ, ok := address(line)
	switch classify(line, typ, ok) {
	case classUnknown:
		d.c.unknownType.Add(1)
		return
	case classSkip:
		d.c.sentences.Add(1)
		return
	}
	m, ok := readFast(line, talker, typ)
	if !ok {
		var err error
		if m, err = d.parseSlow(line); err != nil {
			var ns *gonmea.NotSupportedError
			if errors.As(err, &ns) {
				d.c.unknownType.Add(1)
				return
			}
			d.c.unparsable.Add(1)
			if d.debug() {
				d.log.Debug("unparsable nmea sentence", "sentence", string(line), "err", err)
			}
			return
		}
	}
	d.c.sentences.Add(1)
	d.asm.add(&m)
}

// debug reports whether debug lines are logged: their arguments cost
// allocations that a decoder without a debug log must not pay.
func (d *Decoder) debug() bool {
	return d.log != nil && d.log.Enabled(context.Background(), slog.LevelDebug)
}

// parseSlow parses line with go-nmea: every sentence the fast reader is
// not sure of, and in tests the reference the fast reader is held to.
func (d *Decoder) parseSlow(line []byte) (msg, error) {
	s, err := d.parser.Parse(string(line))
	if err != nil {
		return msg{}, err
	}
	return fromGoNMEA(s), nil
}

// sentenceClass says what the decoder does with a checksummed sentence,
// decided from its address field alone, before any parsing.
type sentenceClass uint8

const (
	classParse   sentenceClass = iota // a type the assembler reads (or a malformed address go-nmea rejects)
	classSkip                         // a type go-nmea knows and no fix uses: counted, never parsed
	classUnknown                      // a type go-nmea does not know: counted in UnknownType
)

// knownType reports whether go-nmea v1.10.0 parses the type after start
// ('$' or '!'), by the type its ParsePrefix gives (proprietary "$PGRME" is
// type "GRME"; a query "$GPECQ" is type "Q"): the cases of
// SentenceParser.Parse. TestClassifyMatchesGoNMEA holds the list to go-nmea.
func knownType(start byte, typ []byte) bool {
	if start == '!' {
		switch string(typ) {
		case "ABM", "BBM", "TTD", "VDM", "VDO":
			return true
		}
		return false
	}
	switch string(typ) {
	case "AAM", "ACK", "ACN", "ALA", "ALC", "ALF", "ALR", "APB", "ARC", "BEC", "BOD", "BWC", "BWR", "BWW",
		"DBK", "DBS", "DBT", "DOR", "DPT", "DSC", "DSE", "DTM", "EVE", "FIR", "GGA", "GLL", "GNS", "GSA",
		"GSV", "HBT", "HDG", "HDM", "HDT", "HSC", "MDA", "MTA", "MTW", "MWD", "MWV", "OSD", "RMB", "RMC",
		"ROT", "RPM", "RSA", "RSD", "RTE", "THS", "TLB", "TLL", "TTM", "TXT", "VBW", "VDR", "VHW", "VLW",
		"VPW", "VSD", "VTG", "VWR", "VWT", "WPL", "XDR", "XTE", "ZDA", "PGN", "CDIN", "GRME", "HTRO",
		"MTK001", "RDID", "SKPDPT", "SONCMS", "Q":
		return true
	}
	return false
}

// assembledType returns the msgType of a type the assembler reads after
// '$', msgOther for any other.
func assembledType(typ []byte) msgType {
	if len(typ) != 3 {
		return msgOther
	}
	switch string(typ) {
	case "RMC":
		return msgRMC
	case "GGA":
		return msgGGA
	case "GNS":
		return msgGNS
	case "GLL":
		return msgGLL
	case "VTG":
		return msgVTG
	case "GSA":
		return msgGSA
	case "ZDA":
		return msgZDA
	case "GSV":
		return msgGSV
	}
	return msgOther
}

// address returns the sentence's talker and type as go-nmea's ParsePrefix
// splits them: the address runs from after the start character to the
// first ',' or '*' (go-nmea's fields end at the first '*'). ok is false for
// an empty address, which go-nmea rejects.
func address(line []byte) (talker, typ []byte, ok bool) {
	end := 1
	for end < len(line) && line[end] != ',' && line[end] != '*' {
		end++
	}
	a := line[1:end]
	switch {
	case len(a) == 0:
		return nil, nil, false
	case a[0] == 'P':
		return a[:1], a[1:], true
	case len(a) == 5 && a[4] == 'Q':
		return a[:2], a[4:], true
	case len(a) == 5:
		return a[:2], a[2:], true
	}
	return nil, a, true
}

// classify decides from the address alone whether line is worth parsing.
func classify(line, typ []byte, ok bool) sentenceClass {
	switch {
	case !ok, line[0] == '$' && assembledType(typ) != msgOther:
		return classParse
	case bytes.IndexByte(line, '\\') >= 0:
		return classParse // go-nmea looks for a tag block, and rejects it
	case knownType(line[0], typ):
		return classSkip
	}
	return classUnknown
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
	sum := xorBytes(line[1 : n-3])
	hi, ok1 := unhex(line[n-2])
	lo, ok2 := unhex(line[n-1])
	return ok1 && ok2 && hi<<4|lo == sum
}

// xorBytes is the XOR of all bytes of b, eight at a time.
func xorBytes(b []byte) byte {
	var w uint64
	for len(b) >= 8 {
		w ^= binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	w ^= w >> 32
	w ^= w >> 16
	w ^= w >> 8
	x := byte(w)
	for _, c := range b {
		x ^= c
	}
	return x
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

// sentKey is talker and type ("GNGSA"), a value so that filing a sentence
// allocates nothing. Longer names (proprietary) are cut: a key only has to
// tell the sentences of one receiver's cycle apart.
type sentKey [8]byte

func makeKey[T string | []byte](talker, typ T) sentKey {
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

// gnsQuality maps a GNS mode indicator (one letter per constellation) to a
// GGA quality: the best constellation wins; 0 if none has a fix.
func gnsQuality(mode []string) int {
	best := 0
	for _, c := range mode {
		best = gnsBetter(best, faaQuality(c))
	}
	return best
}

// gnsQualityBytes is gnsQuality of the mode field as read.
func gnsQualityBytes(mode []byte) int {
	best := 0
	for i := range mode {
		best = gnsBetter(best, faaQuality(mode[i:i+1]))
	}
	return best
}

func gnsBetter(best, q int) int {
	if q > best || (best == 6 && q > 0) {
		return q
	}
	return best
}

// faaQuality maps an FAA mode indicator (RMC, GNS) to a GGA fix quality.
func faaQuality[T string | []byte](mode T) int {
	if len(mode) != 1 {
		return 1 // no mode (NMEA before 2.3), or a proprietary one
	}
	switch mode[0] {
	case 'N', 'M', 'S': // data not valid, manual input, simulator
		return 0
	case 'D': // differential
		return 2
	case 'P': // precise
		return 3
	case 'R': // RTK integer
		return 4
	case 'F': // RTK float
		return 5
	case 'E': // estimated (dead reckoning)
		return 6
	}
	return 1 // "A" (autonomous)
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
		k := enderKey{e.lastKey, e.counts.get(e.lastKey)}
		if a.ender.key != (sentKey{}) && a.ender != k {
			a.ender = enderKey{} // the receiver changed its cycle
		}
		if a.ender.key == (sentKey{}) && k == a.candidate {
			a.ender = k
			if a.d.debug() {
				a.d.log.Debug("nmea cycle ender learned", "sentence", k.key.String(), "nth", k.n)
			}
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
			a.d.c.noDate.Add(1)
		}
		a.undated, a.undatedTod, a.hasUndated = f, e.tod, true
		return Fix{}, false
	}
	f.Time = time.Date(date.y, time.Month(date.m), date.d, 0, 0, 0, 0, time.UTC).
		Add(time.Duration(e.tod) * time.Millisecond)
	return f, true
}

// msgType is a sentence type the assembler reads.
type msgType uint8

const (
	msgOther msgType = iota // parsed, but nothing a fix uses
	msgRMC
	msgGGA
	msgGNS
	msgGLL
	msgVTG
	msgGSA
	msgZDA
	msgGSV // only marks the cycle
)

// msg is what the assembler reads of one sentence: the values go-nmea
// parses for the fields a Fix uses, and which fields were present (a field
// given as 0 is not an absent one). The fast reader and go-nmea both
// produce it; TestFastReaderMatchesGoNMEA holds them equal.
type msg struct {
	typ  msgType
	key  sentKey
	has  uint32 // bit i: field i (after the address) is not empty
	time gonmea.Time

	lat, lon float64
	valid    bool  // RMC, GLL: status A
	quality  int   // GGA: fix quality (-1 if empty); GNS: gnsQuality; RMC, GLL: faaQuality of the FAA mode
	sats     int64 // GGA, GNS: satellites used; GSA: satellites listed
	hdop     float64
	alt      float64
	speed    float64 // RMC, VTG: knots
	kph      float64 // VTG
	course   float64 // RMC, VTG: true course
	date     gonmea.Date
	fixNone  bool // GSA: fix type 1
	year     int64
	month    int64
	day      int64
}

func (m *msg) present(i int) bool { return m.has&(1<<i) != 0 }

func presence(fields []string) uint32 {
	var has uint32
	for i, f := range fields {
		if i < 32 && f != "" {
			has |= 1 << i
		}
	}
	return has
}

// fromGoNMEA takes what the assembler reads from a sentence go-nmea parsed.
func fromGoNMEA(s gonmea.Sentence) msg {
	m := msg{key: makeKey(s.TalkerID(), s.DataType())}
	switch v := s.(type) {
	case gonmea.RMC:
		m.typ, m.has, m.time = msgRMC, presence(v.Fields), v.Time
		m.valid, m.quality = v.Validity == gonmea.ValidRMC, faaQuality(v.FFAMode)
		m.lat, m.lon, m.speed, m.course, m.date = v.Latitude, v.Longitude, v.Speed, v.Course, v.Date
	case gonmea.GGA:
		m.typ, m.has, m.time = msgGGA, presence(v.Fields), v.Time
		m.quality = -1
		if q, err := strconv.Atoi(v.FixQuality); err == nil {
			m.quality = q
		}
		m.lat, m.lon, m.sats, m.hdop, m.alt = v.Latitude, v.Longitude, v.NumSatellites, v.HDOP, v.Altitude
	case gonmea.GNS:
		m.typ, m.has, m.time = msgGNS, presence(v.Fields), v.Time
		m.quality = gnsQuality(v.Mode)
		m.lat, m.lon, m.sats, m.hdop, m.alt = v.Latitude, v.Longitude, v.SVs, v.HDOP, v.Altitude
	case gonmea.GLL:
		m.typ, m.has, m.time = msgGLL, presence(v.Fields), v.Time
		m.valid, m.quality = v.Validity == gonmea.ValidGLL, faaQuality(v.FFAMode)
		m.lat, m.lon = v.Latitude, v.Longitude
	case gonmea.VTG:
		m.typ, m.has = msgVTG, presence(v.Fields)
		m.course, m.speed, m.kph = v.TrueTrack, v.GroundSpeedKnots, v.GroundSpeedKPH
	case gonmea.GSA:
		m.typ, m.has = msgGSA, presence(v.Fields)
		m.fixNone, m.sats, m.hdop = v.FixType == gonmea.FixNone, int64(len(v.SV)), v.HDOP
	case gonmea.ZDA:
		m.typ, m.has, m.time = msgZDA, presence(v.Fields), v.Time
		m.year, m.month, m.day = v.Year, v.Month, v.Day
	case gonmea.GSV:
		m.typ, m.has = msgGSV, presence(v.Fields)
	}
	return m
}
