package nmea

// The fast reader: the sentence types a fix uses (RMC, GGA, GNS, GLL, VTG, GSA, ZDA, GSV) read in place, without
// allocating, for the shapes it can read exactly as go-nmea v1.10.0 would. Any other shape goes to go-nmea, which
// also decides every error. TestFastReaderMatchesGoNMEA and FuzzFastReader hold the two equal; upgrading go-nmea
// means running them again. It exists for speed: go-nmea's Parse allocates per field and was most of the ingest
// time on a 1 GHz ARM core.

import (
	"bytes"
	"math"
	"strings"

	gonmea "github.com/adrianmo/go-nmea"
)

// maxFastFields bounds the fields the fast reader splits; a sentence with
// more goes to go-nmea.
const maxFastFields = 24

// fieldReader reads the fields of one sentence in place, without
// allocating. It is sure or it gives up: ok turns false at the first value
// whose go-nmea reading it cannot reproduce exactly (then go-nmea parses the
// sentence, and reports any error). Accessors name go-nmea's rule they copy.
type fieldReader struct {
	body []byte // between the address's ',' and the '*'
	at   [maxFastFields + 1]int32
	n    int
	ok   bool

	present uint32 // bit i: field i is not empty
}

func (r *fieldReader) init(body []byte) {
	r.body, r.n, r.ok, r.present = body, 0, true, 0
	r.at[0] = 0
	// go-nmea's fields end at the first '*'; a '\' makes it look for a
	// tag block.
	if bytes.IndexByte(body, '*') >= 0 || bytes.IndexByte(body, '\\') >= 0 {
		r.ok = false
		return
	}
	for i := 0; i < len(body); i++ {
		if body[i] != ',' {
			continue
		}
		if r.n == maxFastFields-1 {
			r.ok = false
			return
		}
		if int32(i) > r.at[r.n] {
			r.present |= 1 << r.n
		}
		r.n++
		r.at[r.n] = int32(i + 1)
	}
	if int32(len(body)) > r.at[r.n] {
		r.present |= 1 << r.n
	}
	r.n++
	r.at[r.n] = int32(len(body) + 1)
}

// field returns field i; it needs i < r.n (go-nmea: "index out of range").
func (r *fieldReader) field(i int) []byte {
	if i >= r.n {
		r.ok = false
		return nil
	}
	return r.body[r.at[i] : r.at[i+1]-1]
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// decimal reads [-]digits[.digits] with at most 15 digits. The result is
// strconv.ParseFloat's to the bit: the mantissa and the power of ten are
// exact in a float64, and one IEEE division rounds correctly (strconv's own
// exact path). Anything else (exponents, signs "+", NaN, longer mantissas)
// is not ok.
func decimal(b []byte) (float64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	var mant uint64
	nd, frac, dot := 0, 0, false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if nd == 15 {
				return 0, false
			}
			mant = mant*10 + uint64(c-'0')
			nd++
			if dot {
				frac++
			}
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	if nd == 0 {
		return 0, false
	}
	f := float64(mant) / pow10[frac]
	if neg {
		f = -f
	}
	return f, true
}

// float is go-nmea's Parser.Float64: empty is 0.
func (r *fieldReader) float(i int) float64 {
	b := r.field(i)
	if len(b) == 0 {
		return 0
	}
	f, ok := decimal(b)
	r.ok = r.ok && ok
	return f
}

// digits reads 1 to 18 decimal digits, no sign.
func digits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// int is go-nmea's Parser.Int64: empty is 0.
func (r *fieldReader) int(i int) int64 {
	b := r.field(i)
	if len(b) == 0 {
		return 0
	}
	v, ok := digits(b)
	r.ok = r.ok && ok
	return v
}

// enum is go-nmea's Parser.EnumString: empty, or one of the letters in
// options (all go-nmea's options we read are one letter).
func (r *fieldReader) enum(i int, options string) byte {
	b := r.field(i)
	switch {
	case len(b) == 0:
		return 0
	case len(b) == 1:
		for j := 0; j < len(options); j++ {
			if options[j] == b[0] {
				return b[0]
			}
		}
	}
	r.ok = false
	return 0
}

// time is go-nmea's ParseTime: empty is not Valid; else ^\d{6}(\.\d*)?$.
func (r *fieldReader) time(i int) gonmea.Time {
	b := r.field(i)
	if len(b) == 0 {
		return gonmea.Time{}
	}
	if len(b) < 6 || (len(b) > 6 && b[6] != '.') {
		r.ok = false
		return gonmea.Time{}
	}
	for j, c := range b {
		if j != 6 && (c < '0' || c > '9') {
			r.ok = false
			return gonmea.Time{}
		}
	}
	second, ok := decimal(b[4:])
	if !ok {
		r.ok = false
		return gonmea.Time{}
	}
	whole, frac := math.Modf(second)
	return gonmea.Time{Valid: true, Hour: int(b[0]-'0')*10 + int(b[1]-'0'), Minute: int(b[2]-'0')*10 + int(b[3]-'0'),
		Second: int(whole), Millisecond: int(math.Round(frac * 1000))}
}

// date is go-nmea's ParseDate: empty is not Valid; else ddmmyy.
func (r *fieldReader) date(i int) gonmea.Date {
	b := r.field(i)
	if len(b) == 0 {
		return gonmea.Date{}
	}
	if _, ok := digits(b); !ok || len(b) != 6 {
		r.ok = false
		return gonmea.Date{}
	}
	two := func(k int) int { return int(b[k]-'0')*10 + int(b[k+1]-'0') }
	return gonmea.Date{Valid: true, DD: two(0), MM: two(2), YY: two(4)}
}

// latLong is go-nmea's Parser.LatLong for the shapes receivers send: both
// fields empty (0), or ddmm.mmmm and a hemisphere letter, in range.
func (r *fieldReader) latLong(i, j int) float64 {
	a, h := r.field(i), r.field(j)
	if len(a) == 0 && len(h) == 0 {
		return 0
	}
	if len(a) == 0 || a[0] == '-' || len(h) != 1 {
		r.ok = false
		return 0
	}
	v, ok := decimal(a)
	if !ok {
		r.ok = false
		return 0
	}
	degrees := math.Floor(v / 100)
	minutes := v - (degrees * 100)
	v = degrees + minutes/60
	switch h[0] {
	case 'N', 'E':
	case 'S', 'W':
		v = 0 - v
	default:
		r.ok = false
		return 0
	}
	if (h[0] == 'N' || h[0] == 'S') && (v < -90.0 || 90.0 < v) || (v < -180.0 || 180.0 < v) {
		r.ok = false
		return 0
	}
	return v
}

// readFast reads the sentences the assembler uses without go-nmea and
// without allocating (talker and typ from address(line)); ok is false when go-nmea must decide (another type,
// or any field shape it does not know to read exactly as go-nmea would).
// line has a valid checksum. Fields that tolerate clears are skipped here.
func readFast(line, talker, typ []byte) (m msg, ok bool) {
	if line[0] != '$' || bytes.IndexByte(talker, '\\') >= 0 {
		return msg{}, false
	}
	if m.typ = assembledType(typ); m.typ == msgOther {
		return msg{}, false
	}
	end := len(talker) + len(typ) + 1
	if end >= len(line)-3 || line[end] != ',' {
		return msg{}, false // no fields at all: leave it to go-nmea
	}
	var r fieldReader
	r.init(line[end+1 : len(line)-3])
	if !r.ok {
		return msg{}, false
	}
	m.key = makeKey(talker, typ)
	m.has = r.present
	switch m.typ {
	case msgRMC:
		m.time = r.time(0)
		m.valid = r.enum(1, "AV") == 'A'
		m.lat = r.latLong(2, 3)
		m.lon = r.latLong(4, 5)
		m.speed = r.float(6)
		m.course = r.float(7)
		m.date = r.date(8)
		// 9 and 10 (magnetic variation) are cleared by tolerate.
		r.field(10)
		m.has &^= 1<<9 | 1<<10
		m.quality = 1
		if r.n > 11 {
			m.quality = faaQuality(r.field(11))
		}
		if r.n > 12 {
			r.enum(12, "SCUV")
		}
	case msgGGA:
		m.time = r.time(0)
		m.lat = r.latLong(1, 2)
		m.lon = r.latLong(3, 4)
		m.quality = -1
		if q := r.enum(5, "012345678"); q != 0 {
			m.quality = int(q - '0')
			if m.quality >= 7 {
				m.quality = 0 // tolerate: manual input and simulator are no fix
			}
		}
		m.sats = r.int(6)
		m.hdop = r.float(7)
		m.alt = r.float(8)
		// 9 on are cleared by tolerate; go-nmea reads up to 13.
		r.field(13)
		m.has &= 1<<9 - 1
	case msgGNS:
		m.time = r.time(0)
		m.lat = r.latLong(1, 2)
		m.lon = r.latLong(3, 4)
		mode := r.field(5)
		for _, c := range mode {
			if !strings.ContainsRune("NADPRFEMS", rune(c)) {
				r.ok = false
			}
		}
		m.quality = gnsQualityBytes(mode)
		m.sats = r.int(6)
		m.hdop = r.float(7)
		m.alt = r.float(8)
		r.float(9)
		r.float(10)
		r.int(11)
		if r.n >= 13 {
			r.enum(12, "SCUV")
		}
	case msgGLL:
		m.lat = r.latLong(0, 1)
		m.lon = r.latLong(2, 3)
		m.time = r.time(4)
		m.valid = r.enum(5, "AV") == 'A'
		m.quality = 1
		if r.n > 6 {
			m.quality = faaQuality(r.field(6))
		}
	case msgVTG:
		m.course = r.float(0)
		r.float(2)
		m.speed = r.float(4)
		m.kph = r.float(6)
	case msgGSA:
		r.enum(0, "AM")
		m.fixNone = r.enum(1, "123") == '1'
		for i := 2; i < 14; i++ {
			if len(r.field(i)) > 0 {
				m.sats++
			}
		}
		r.float(14)
		m.hdop = r.float(15)
		r.float(16)
		if r.n > 17 {
			r.int(17)
		}
	case msgZDA:
		m.time = r.time(0)
		m.day = r.int(1)
		m.month = r.int(2)
		m.year = r.int(3)
		r.int(4)
		r.int(5)
	case msgGSV:
		r.int(0)
		r.int(1)
		r.int(2)
		i := 0
		for ; i < 4 && 6+i*4 < r.n; i++ {
			for k := 3 + i*4; k <= 6+i*4; k++ {
				r.int(k)
			}
		}
		if sid := 3 + i*4; r.n == sid+1 {
			r.int(sid)
		}
	}
	if !r.ok {
		return msg{}, false
	}
	return m, true
}
