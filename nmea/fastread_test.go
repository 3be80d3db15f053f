package nmea

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	gonmea "github.com/adrianmo/go-nmea"
)

// logSentences returns every sentence with a valid checksum of the real
// logs in testdata, as the framer
// hands them on.
func logSentences(t testing.TB) [][]byte {
	t.Helper()
	logs, _ := filepath.Glob("testdata/*.log")
	if len(logs) == 0 {
		t.Fatal("no logs in testdata")
	}
	var out [][]byte
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, framedSentences(data)...)
	}
	return out
}

// framedSentences runs the real framer over data and collects the lines it
// would verify, keeping those with a valid checksum.
func framedSentences(data []byte) [][]byte {
	var out [][]byte
	d := NewDecoder(nil, nil, nil)
	for _, chunk := range bytes.SplitAfter(data, []byte("\n")) {
		for _, b := range chunk {
			d.Write([]byte{b})
			if (b == '\r' || b == '\n') && d.n > 0 {
				line := bytes.TrimRight(d.line[:d.n], " \t")
				if checksumOK(line) {
					out = append(out, bytes.Clone(line))
				}
				d.n = 0
			}
		}
	}
	return out
}

// checkFastAgrees fails t unless the fast reader and go-nmea agree on line:
// when the fast reader reads it, go-nmea parses it without error to the very
// same msg. It returns whether the fast reader read it.
func checkFastAgrees(t *testing.T, d *Decoder, line []byte) bool {
	t.Helper()
	talker, typ, ok := address(line)
	if classify(line, typ, ok) != classParse {
		return false
	}
	fast, ok := readFast(line, talker, typ)
	slow, err := d.parseSlow(line)
	if !ok {
		return false
	}
	if err != nil {
		t.Errorf("%q: fast reader read it, go-nmea says %v", line, err)
		return true
	}
	if fast != slow {
		t.Errorf("%q:\nfast    %+v\ngo-nmea %+v", line, fast, slow)
	}
	return true
}

// TestFastReaderMatchesGoNMEA holds the fast reader to go-nmea on every
// sentence of every real log, and on the shapes receivers and noise make.
func TestFastReaderMatchesGoNMEA(t *testing.T) {
	d := NewDecoder(nil, nil, nil)
	t.Run("real logs", func(t *testing.T) {
		parse, fast := 0, 0
		for _, line := range logSentences(t) {
			if _, typ, ok := address(line); classify(line, typ, ok) == classParse {
				parse++
			}
			if checkFastAgrees(t, d, line) {
				fast++
			}
		}
		t.Logf("%d sentences to parse, %d read by the fast reader", parse, fast)
		// The fast reader exists for speed: most real sentences must take it.
		if parse == 0 || float64(fast) < 0.95*float64(parse) {
			t.Errorf("fast reader read %d of %d sentences, want >= 95%%", fast, parse)
		}
	})
	tests := []struct {
		name string
		body string
		fast bool // the fast reader must read it (else it may leave it to go-nmea)
	}{
		{"RMC", "GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W", true},
		{"RMC with FAA mode and nav status", "GNRMC,123519.00,A,4807.038,N,01131.000,E,0.0,,230394,,,D,V", true},
		{"RMC void, empty position", "GPRMC,123519,V,,,,,,,230394,,,N", true},
		{"RMC variation direction N (tolerated)", "GPRMC,123519,A,4807.038,N,01131.000,E,0.0,0.0,230394,1.0,N", true},
		{"RMC south west", "GPRMC,000000.5,A,3351.000,S,15112.500,W,1.5,359.9,010100,,", true},
		{"RMC time 60 s", "GPRMC,235960.999,A,4807.038,N,01131.000,E,1,1,311299,,", true},
		{"RMC too few fields", "GPRMC,123519,A,4807.038,N,01131.000,E", false},
		{"RMC bad status", "GPRMC,123519,X,4807.038,N,01131.000,E,0.0,0.0,230394,,", false},
		{"RMC latitude out of range", "GPRMC,123519,A,9107.038,N,01131.000,E,0.0,0.0,230394,,", false},
		{"RMC latitude without hemisphere", "GPRMC,123519,A,4807.038,,01131.000,E,0.0,0.0,230394,,", false},
		{"RMC hemisphere without latitude", "GPRMC,123519,A,,N,01131.000,E,0.0,0.0,230394,,", false},
		{"RMC negative latitude", "GPRMC,123519,A,-4807.038,N,01131.000,E,0.0,0.0,230394,,", false},
		{"RMC exponent speed", "GPRMC,123519,A,4807.038,N,01131.000,E,1e1,0.0,230394,,", false},
		{"RMC NaN course", "GPRMC,123519,A,4807.038,N,01131.000,E,1,NaN,230394,,", false},
		{"RMC 16-digit speed", "GPRMC,123519,A,4807.038,N,01131.000,E,1.000000000000001,0,230394,,", false},
		{"RMC short time", "GPRMC,12351,A,4807.038,N,01131.000,E,0,0,230394,,", false},
		{"RMC time with letters", "GPRMC,12a519,A,4807.038,N,01131.000,E,0,0,230394,,", false},
		{"RMC date with sign", "GPRMC,123519,A,4807.038,N,01131.000,E,0,0,+30394,,", false},
		{"RMC bad nav status", "GPRMC,123519,A,4807.038,N,01131.000,E,0,0,230394,,,A,X", false},
		{"RMC star inside", "GPRMC,123519,A,4807.038,N,01131.000,E,0,0*,230394,,", false},
		{"GGA", "GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", true},
		{"GGA quality 8 (tolerated)", "GPGGA,123519,4807.038,N,01131.000,E,8,08,0.9,545.4,M,46.9,M,,", true},
		{"GGA quality 9", "GPGGA,123519,4807.038,N,01131.000,E,9,08,0.9,545.4,M,46.9,M,,", false},
		{"GGA empty", "GPGGA,,,,,,0,,,,,,,,", true},
		{"GGA negative altitude", "GPGGA,123519,4807.038,N,01131.000,E,2,12,0.6,-12.5,M,,,,", true},
		{"GGA 13 fields", "GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,", false},
		{"GGA signed satellites", "GPGGA,123519,4807.038,N,01131.000,E,1,+8,0.9,545.4,M,46.9,M,,", false},
		{"GGA junk geoid (tolerated)", "GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,x,M,y,z", true},
		{"GNS", "GNGNS,014035.00,4332.69262,S,17235.48549,E,RR,13,0.9,25.63,11.24,,", true},
		{"GNS nav status", "GNGNS,014035.00,4332.69262,S,17235.48549,E,ANN,13,0.9,25.63,11.24,,,V", true},
		{"GNS bad mode", "GNGNS,014035.00,4332.69262,S,17235.48549,E,AX,13,0.9,25.63,11.24,,", false},
		{"GNS bad station", "GNGNS,014035.00,4332.69262,S,17235.48549,E,AA,13,0.9,25.63,11.24,,x", false},
		{"GLL", "GPGLL,4916.45,N,12311.12,W,225444,A", true},
		{"GLL with mode", "GPGLL,4916.45,N,12311.12,W,225444.00,A,D", true},
		{"GLL too short", "GPGLL,4916.45,N,12311.12,W", false},
		{"VTG", "GPVTG,054.7,T,034.4,M,005.5,N,010.2,K", true},
		{"VTG with mode", "GPVTG,,T,,M,0.0,N,0.0,K,N", true},
		{"VTG bad magnetic track", "GPVTG,054.7,T,x,M,005.5,N,010.2,K", false},
		{"GSA", "GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1", true},
		{"GSA system ID", "GNGSA,A,3,80,71,73,79,69,,,,,,,,1.83,1.09,1.47,2", true},
		{"GSA no fix", "GPGSA,A,1,,,,,,,,,,,,,,,", true},
		{"GSA lower case mode", "GPGSA,a,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1", false},
		{"ZDA", "GPZDA,201530.00,04,07,2002,00,00", true},
		{"ZDA empty", "GPZDA,,,,,,", true},
		{"ZDA negative zone", "GPZDA,201530.00,04,07,2002,-05,00", false},
		{"GSV", "GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00", true},
		{"GSV with signal ID", "GPGSV,1,1,02,01,40,083,46,02,17,308,41,1", true},
		{"GSV short", "GPGSV,1,1,00", true},
		{"GSV bad azimuth", "GPGSV,3,1,11,03,03,1x1,00", false},
		{"no talker", "GGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,", true},
		{"proprietary named like RMC", "PRMC,123519,A,4807.038,N,01131.000,E,0,0,230394,,", true},
		{"no fields", "GPRMC", false},
		{"AIS", "!AIVDM,1,1,,B,15M67FC000G?ufbE`FepT@3n00Sa,0", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line := bytes.TrimRight(nmeaLines(tc.body), "\r\n")
			if got := checkFastAgrees(t, d, line); tc.fast && !got {
				t.Errorf("%q: fast reader left it to go-nmea", line)
			}
		})
	}
}

// FuzzFastReader checks the fast reader against go-nmea on any sentence
// the framer can hand on (printable ASCII, valid checksum).
func FuzzFastReader(f *testing.F) {
	for _, line := range logSentences(f) {
		f.Add(line[1 : len(line)-3])
	}
	f.Add([]byte("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W"))
	d := NewDecoder(nil, nil, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, b := range body {
			if !plain[b] {
				return // the framer never hands this on
			}
		}
		line := bytes.TrimRight(nmeaLines(string(body)), "\r\n")
		if len(line) > MaxSentence {
			return
		}
		checkFastAgrees(t, d, line)
	})
}

// goNMEATypes are the types go-nmea v1.10.0 parses, as "$" or "!" and the
// address to send them with.
var goNMEATypes = []string{
	"$GPAAM", "$GPACK", "$GPACN", "$GPALA", "$GPALC", "$GPALF", "$GPALR", "$GPAPB", "$GPARC", "$GPBEC", "$GPBOD",
	"$GPBWC", "$GPBWR", "$GPBWW", "$GPDBK", "$GPDBS", "$GPDBT", "$GPDOR", "$GPDPT", "$GPDSC", "$GPDSE", "$GPDTM",
	"$GPEVE", "$GPFIR", "$GPGGA", "$GPGLL", "$GPGNS", "$GPGSA", "$GPGSV", "$GPHBT", "$GPHDG", "$GPHDM", "$GPHDT",
	"$GPHSC", "$GPMDA", "$GPMTA", "$GPMTW", "$GPMWD", "$GPMWV", "$GPOSD", "$GPRMB", "$GPRMC", "$GPROT", "$GPRPM",
	"$GPRSA", "$GPRSD", "$GPRTE", "$GPTHS", "$GPTLB", "$GPTLL", "$GPTTM", "$GPTXT", "$GPVBW", "$GPVDR", "$GPVHW",
	"$GPVLW", "$GPVPW", "$GPVSD", "$GPVTG", "$GPVWR", "$GPVWT", "$GPWPL", "$GPXDR", "$GPXTE", "$GPZDA", "$GPPGN",
	"$PCDIN", "$PGRME", "$PHTRO", "$PMTK001", "$PRDID", "$PSKPDPT", "$PSONCMS", "$GPECQ",
	"!AIABM", "!AIBBM", "!AITTD", "!AIVDM", "!AIVDO",
}

// TestClassifyMatchesGoNMEA: the decoder's list of types go-nmea knows is
// go-nmea's, and every real sentence it calls unknown go-nmea does not
// support (and the reverse).
func TestClassifyMatchesGoNMEA(t *testing.T) {
	d := NewDecoder(nil, nil, nil)
	notSupported := func(line []byte) bool {
		_, err := d.parser.Parse(string(line))
		var ns *gonmea.NotSupportedError
		return errors.As(err, &ns)
	}
	check := func(t *testing.T, line []byte) {
		t.Helper()
		_, typ, ok := address(line)
		if unknown := classify(line, typ, ok) == classUnknown; unknown != notSupported(line) {
			t.Errorf("%q: decoder says unknown=%v, go-nmea not supported=%v", line, unknown, !unknown)
		}
	}
	for _, addr := range goNMEATypes {
		t.Run(addr, func(t *testing.T) {
			line := []byte(addr + ",1,2,3")
			line = fmt.Appendf(line, "*%02X", xor(line[1:]))
			if notSupported(line) {
				t.Fatalf("%s: go-nmea does not support it: fix the list in this test", addr)
			}
			check(t, line)
		})
	}
	for _, addr := range []string{"$GPXYZ", "$PXYZ", "$PUBX", "!GPRMC", "$AIVDM", "$GPGGAX", "$RMCX"} {
		t.Run(addr, func(t *testing.T) {
			line := []byte(addr + ",1,2,3")
			check(t, fmt.Appendf(line, "*%02X", xor(line[1:])))
		})
	}
	t.Run("real logs", func(t *testing.T) {
		for _, line := range logSentences(t) {
			check(t, line)
		}
	})
}

func xor(b []byte) byte {
	var x byte
	for _, c := range b {
		x ^= c
	}
	return x
}

// TestSkippedTypesCounted: sentences of types no fix uses are counted as
// sentences, never parsed, and change no fix.
func TestSkippedTypesCounted(t *testing.T) {
	base := []string{
		"GPRMC,101010.00,A,4807.038,N,01131.000,E,5.0,90.0,020326,,,A",
		"GPGGA,101010.00,4807.038,N,01131.000,E,1,07,1.1,500.0,M,47.0,M,,",
	}
	extra := []string{"GPHDT,274.07,T", "GPTXT,01,01,02,u-blox ag", "GPDTM,W84,,0.0,N,0.0,E,0.0,W84"}
	want, ws := decodeAll(nmeaLines(base...))
	got, gs := decodeAll(nmeaLines(append(append([]string{}, extra...), base...)...))
	if len(got) != 1 || len(want) != 1 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fixes %v, want %v", got, want)
	}
	if gs.Sentences != ws.Sentences+uint64(len(extra)) || gs.UnknownType != 0 || gs.Unparsable != 0 {
		t.Errorf("stats %s, want %d sentences, nothing unknown or unparsable", gs, ws.Sentences+uint64(len(extra)))
	}
}
