package nmea

import (
	"strings"
	"testing"

	gonmea "github.com/adrianmo/go-nmea"
)

// parsed returns what the assembler reads of one sentence body (without
// '$' and checksum), as go-nmea parses it.
func parsed(t *testing.T, body string) *msg {
	t.Helper()
	line := strings.TrimSpace(string(nmeaLines(body)))
	s, err := gonmea.Parse(line)
	if err != nil {
		t.Fatalf("parse %q: %v", line, err)
	}
	m := fromGoNMEA(s)
	return &m
}

// TestAssemblerAlone drives the assembler without a Decoder: parsed
// sentences in, fixes out through the emit function, counts in its own
// Counters.
func TestAssemblerAlone(t *testing.T) {
	var c Counters
	var got []Fix
	a := newAssembler(func(f Fix) { got = append(got, f) }, &c, nil)
	for _, body := range []string{
		"GPRMC,120000,A,4807.038,N,01131.000,E,0.0,,010126,,,A",
		"GPGGA,120000,4807.038,N,01131.000,E,1,05,1.5,10.0,M,,M,,",
		"GPRMC,120001,V,,,,,,,010126,,,N",
		"GPRMC,120002,A,4807.040,N,01131.000,E,0.0,,010126,,,A",
	} {
		a.add(parsed(t, body))
	}
	if len(got) != 1 {
		t.Fatalf("%d fixes before the last epoch closes, want 1", len(got))
	}
	a.closeEpoch(closeFlush)
	if len(got) != 2 {
		t.Fatalf("%d fixes, want 2", len(got))
	}
	checkFix(t, 0, got[0], wantFix{time: "2026-01-01T12:00:00.000Z", lat: muLat, lon: muLon, speedKmh: 0,
		courseDeg: nan(), altM: 10, quality: 1, sats: 5, hdop: 1.5, dateSource: DateRMC})
	checkFix(t, 1, got[1], wantFix{time: "2026-01-01T12:00:02.000Z", lat: 48 + 7.040/60, lon: muLon, speedKmh: 0,
		courseDeg: nan(), altM: nan(), quality: 1, sats: -1, hdop: nan(), dateSource: DateRMC})
	if s := c.Snapshot(); s.Fixes != 2 || s.NoFix != 1 {
		t.Errorf("fixes=%d no_fix=%d, want 2 and 1", s.Fixes, s.NoFix)
	}
}
