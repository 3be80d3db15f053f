package nmea

import (
	"strconv"

	gonmea "github.com/adrianmo/go-nmea"
)

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
