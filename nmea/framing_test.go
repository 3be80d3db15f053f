package nmea

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// Two good epochs from the simulator, reused around the noise.
func goodEpochs(t testing.TB, n int) []byte {
	t.Helper()
	sim := &Simulator{Seed: 1, Start: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	var b []byte
	for i := 0; i < n; i++ {
		b = append(b, sim.Epoch(i)...)
	}
	return b
}

// ubx is a u-blox binary frame (NAV-PVT class/id, short payload) as a
// receiver in mixed NMEA+UBX output sends it.
var ubx = []byte{0xB5, 0x62, 0x01, 0x07, 0x08, 0x00, '$', 'G', 'P', 0x00, 0x24, 0x0A, 0xFF, 0x13, 0x9A, 0x4B}

// sirf is a SiRF binary frame: start 0xA0 0xA2, length, payload, checksum,
// end 0xB0 0xB3.
var sirf = []byte{0xA0, 0xA2, 0x00, 0x05, 0x02, '$', 0x0D, 0x0A, 0x00, 0x00, 0x11, 0xB0, 0xB3}

func TestFraming(t *testing.T) {
	good := goodEpochs(t, 2)
	const goodFixes = 2
	tests := []struct {
		name  string
		input []byte
		fixes int
		want  func(s Stats) bool // the reason is counted
		why   string
	}{
		{"clean", good, goodFixes, func(s Stats) bool { return s.Dropped() == 0 && s.GarbageBytes == 0 }, "nothing dropped"},
		{"UBX frames between sentences", cat(ubx, good[:100], ubx, good[100:], ubx), goodFixes,
			func(s Stats) bool { return s.GarbageBytes > 0 && s.Broken >= 1 }, "garbage and a broken sentence"},
		{"UBX frames between epochs", cat(ubx, good[:len(good)/2], ubx, ubx, good[len(good)/2:]), -1,
			func(s Stats) bool { return s.GarbageBytes >= uint64(2*len(ubx)-4) }, "garbage bytes"},
		{"SiRF binary", cat(sirf, sirf, good, sirf), goodFixes,
			func(s Stats) bool { return s.GarbageBytes > 0 }, "garbage bytes"},
		{"NUL bytes", cat(bytes.Repeat([]byte{0}, 500), good, bytes.Repeat([]byte{0}, 500)), goodFixes,
			func(s Stats) bool { return s.GarbageBytes >= 1000 }, "1000 garbage bytes"},
		{"half line at start-up", cat([]byte("4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"), good), goodFixes,
			func(s Stats) bool { return s.GarbageBytes > 0 && s.BadChecksum == 0 }, "garbage, not a bad checksum"},
		{"cut sentence at start-up", cat([]byte("GGA,1,2,3*47\r\n$GPGG"), good), goodFixes,
			func(s Stats) bool { return s.Broken == 1 }, "one broken"},
		{"64 KiB without a newline", cat([]byte("$GPTXT,"), bytes.Repeat([]byte("A,"), 32<<10), good), -1,
			func(s Stats) bool { return s.Overlong == 1 }, "one overlong"},
		{"64 KiB without newline or '$'", cat(bytes.Repeat([]byte("ABCDEF,"), 10<<10), []byte("\r\n"), good), goodFixes,
			func(s Stats) bool { return s.GarbageBytes >= 70<<10 }, "garbage bytes"},
		{"bad checksum", cat(good, nmeaLines("GPRMC,120000,A,4807.038,N,01131.000,E,0.0,,010126,,,A")[:10],
			[]byte("X"), nmeaLines("GPRMC,120000,A,4807.038,N,01131.000,E,0.0,,010126,,,A")[11:]), goodFixes,
			func(s Stats) bool { return s.BadChecksum == 1 }, "one bad checksum"},
		{"no checksum", cat(good, []byte("$GPRMC,120000,A,4807.038,N,01131.000,E,0.0,,010126,,,A\r\n")), goodFixes,
			func(s Stats) bool { return s.BadChecksum == 1 }, "one bad checksum"},
		{"unknown sentence", cat(good, nmeaLines("PXYZ,1,2,3", "GPXYZ,1")), goodFixes,
			func(s Stats) bool { return s.UnknownType == 2 }, "two unknown"},
		{"unparsable field", cat(good, nmeaLines("GPGGA,120000,48x7.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,")), goodFixes,
			func(s Stats) bool { return s.Unparsable == 1 }, "one unparsable"},
		{"AIS and other '!' sentences", cat(good, []byte("!AIVDM,1,1,,B,15M67FC000G?ufbE`FepT@3n00Sa,0*5C\r\n")), goodFixes,
			func(s Stats) bool { return s.BadChecksum+s.UnknownType+s.Unparsable+s.Sentences > 0 }, "counted somewhere"},
		{"CR only line ends", bytes.ReplaceAll(good, []byte("\r\n"), []byte("\r")), goodFixes,
			func(s Stats) bool { return s.Dropped() == 0 }, "nothing dropped"},
		{"LF only line ends", bytes.ReplaceAll(good, []byte("\r\n"), []byte("\n")), goodFixes,
			func(s Stats) bool { return s.Dropped() == 0 }, "nothing dropped"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fixes, s := decodeAll(tc.input)
			if tc.fixes >= 0 && len(fixes) != tc.fixes {
				t.Errorf("%d fixes, want %d (stats %s)", len(fixes), tc.fixes, s)
			}
			if tc.fixes < 0 && len(fixes) == 0 {
				t.Errorf("no fix: decoding stopped (stats %s)", s)
			}
			if !tc.want(s) {
				t.Errorf("stats %s: want %s", s, tc.why)
			}
			// Whatever the noise, decoding goes on: a good epoch after it
			// (new times) still gives its fix.
			more := goodEpochs(t, 4)[len(good):]
			var c Counters
			n := 0
			d := NewDecoder(func(Fix) { n++ }, &c, nil)
			d.Write(tc.input)
			d.Write(more)
			d.Flush()
			if n < len(fixes)+2 {
				t.Errorf("after the noise, %d fixes, want %d", n, len(fixes)+2)
			}
		})
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestFramingMemoryBounded: noise of any length costs no allocation, so a
// receiver spewing binary or an endless line cannot grow memory.
func TestFramingMemoryBounded(t *testing.T) {
	noise := cat([]byte("$GP"), bytes.Repeat([]byte("Z"), 64<<10), ubx, sirf, bytes.Repeat([]byte{0}, 4096))
	d := NewDecoder(nil, nil, nil)
	if a := testing.AllocsPerRun(20, func() { d.Write(noise) }); a != 0 {
		t.Errorf("%v allocations per %d bytes of noise, want 0", a, len(noise))
	}
}

// chunkings returns data cut in several ways, all to be decoded alike.
func decodeChunked(data []byte, step int) ([]Fix, Stats) {
	var c Counters
	var fixes []Fix
	d := NewDecoder(func(f Fix) { fixes = append(fixes, f) }, &c, nil)
	for len(data) > 0 {
		k := min(step, len(data))
		d.Write(data[:k])
		data = data[k:]
	}
	d.Flush()
	s := c.Snapshot()
	s.LastSentence = time.Time{}
	return fixes, s
}

// FuzzFrame checks that framing does not depend on how the bytes are cut
// (the serial driver hands them over in any chunks): one Write, byte by
// byte, and chunks of step bytes decode to the same fixes and counts.
func FuzzFrame(f *testing.F) {
	seedFromLogs(f, func(data []byte) { f.Add(data, uint8(7)) })
	f.Add(cat(ubx, goodEpochs(f, 2), sirf), uint8(3))
	f.Add([]byte("$GPGGA,1\r$GPRMC*00\n\n$$$\x00!"), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		want, ws := decodeAll(data)
		for _, k := range []int{1, int(step) + 1} {
			got, gs := decodeChunked(data, k)
			if !sameFixes(got, want) || !reflect.DeepEqual(gs, ws) {
				t.Fatalf("chunks of %d: %d fixes %s; one write: %d fixes %s", k, len(got), gs, len(want), ws)
			}
		}
	})
}

func sameFixes(a, b []Fix) bool {
	if len(a) != len(b) {
		return false
	}
	eq := func(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) }
	for i := range a {
		x, y := a[i], b[i]
		if !x.Time.Equal(y.Time) || !eq(x.Lat, y.Lat) || !eq(x.Lon, y.Lon) || !eq(x.SpeedKmh, y.SpeedKmh) ||
			!eq(x.CourseDeg, y.CourseDeg) || !eq(x.AltM, y.AltM) || !eq(x.HDOP, y.HDOP) ||
			x.Quality != y.Quality || x.Sats != y.Sats || x.DateSource != y.DateSource {
			return false
		}
	}
	return true
}

// seedFromLogs calls add with every real log, in pieces of at most 4 KiB
// (the fuzzer mutates and minimises small inputs far faster): every log in
// testdata.
func seedFromLogs(f *testing.F, add func([]byte)) {
	logs, _ := filepath.Glob("testdata/*.log")
	if len(logs) == 0 {
		f.Fatal("no logs in testdata")
	}
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			f.Fatal(err)
		}
		for len(data) > 0 {
			k := min(4096, len(data))
			add(data[:k])
			data = data[k:]
		}
	}
}
