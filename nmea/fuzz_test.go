package nmea

import (
	"math"
	"testing"
)

// FuzzDecoder feeds arbitrary bytes, in two chunks with a pause of the
// receiver (the idle flush) between them, and checks the
// decoder's invariants: it never panics, never errors, never emits an
// impossible fix, and its counters add up.
func FuzzDecoder(f *testing.F) {
	seedFromLogs(f, func(data []byte) { f.Add(data, uint16(len(data)/3)) })
	f.Add([]byte("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n"), uint16(10))
	f.Add([]byte("$\x00$GPGGA,,,,*00\r\r\n!AIVDM,1,1,,B,15M67FC000G?ufbE`FepT@3n00Sa,0*5C\n"), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		var c Counters
		var fixes []Fix
		d := NewDecoder(func(x Fix) { fixes = append(fixes, x) }, &c, nil)
		k := min(int(cut), len(data))
		for _, chunk := range [][]byte{data[:k], data[k:]} {
			if n, err := d.Write(chunk); n != len(chunk) || err != nil {
				t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(chunk))
			}
			d.idle()
		}
		d.Flush()
		s := c.Snapshot()
		if s.Fixes != uint64(len(fixes)) {
			t.Fatalf("counted %d fixes, delivered %d", s.Fixes, len(fixes))
		}
		if s.Fixes > s.Sentences {
			t.Fatalf("%d fixes from %d sentences", s.Fixes, s.Sentences)
		}
		for _, x := range fixes {
			if x.Time.IsZero() || math.IsNaN(x.Lat) || math.Abs(x.Lat) > 90 || math.IsNaN(x.Lon) || math.Abs(x.Lon) > 180 {
				t.Fatalf("impossible fix %v", x)
			}
			if x.Quality < 1 || x.Quality > 8 || x.Sats < -1 {
				t.Fatalf("impossible quality or sats in %v", x)
			}
		}
	})
}
