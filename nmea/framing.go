package nmea

import "encoding/binary"

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
