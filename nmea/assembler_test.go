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
	a.flush()
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

// gsaBody is a GPGSA body listing sats satellites.
func gsaBody(sats int) string {
	prns := []string{"01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"}
	return "GPGSA,A,3," + strings.Join(prns[:sats], ",") + strings.Repeat(",", 12-sats) + ",1.9,1.1,1.5"
}

func rmcBody(tod string) string { return "GPRMC," + tod + ",A,4807.038,N,01131.000,E,0.0,,010526,,,A" }
func gllBody(tod string) string { return "GPGLL,4807.038,N,01131.000,E," + tod + ",A,A" }
func ggaBody(tod string) string {
	return "GPGGA," + tod + ",4807.038,N,01131.000,E,1,05,1.5,10.0,M,,M,,"
}

// TestIdleCloseKeepsStragglers: the idle flush hands an epoch on in a pause
// inside its burst, before the ender is learned. What follows the pause is
// still that epoch's: its timed GLL is not late, its GSA's satellites do
// not leak into the next fix, and both teach the ender, so the third epoch
// (no pause: the Receiver waits for a learned ender) closes on its GSA.
func TestIdleCloseKeepsStragglers(t *testing.T) {
	var c Counters
	var fixes []Fix
	d := NewDecoder(func(f Fix) { fixes = append(fixes, f) }, &c, nil)
	for i, tod := range []string{"120000.00", "120001.00"} {
		d.Write(nmeaLines(rmcBody(tod)))
		d.idle()
		if len(fixes) != i+1 {
			t.Fatalf("epoch %d: %d fixes after the idle flush, want %d", i, len(fixes), i+1)
		}
		d.Write(nmeaLines(gllBody(tod), gsaBody(4+i)))
	}
	if !d.enderKnown() {
		d.Write(nmeaLines(rmcBody("120002.00")))
		if !d.enderKnown() {
			t.Fatal("ender not learned across two idle flushes")
		}
	}
	d.Write(nmeaLines(gllBody("120002.00")))
	if len(fixes) != 2 {
		t.Fatalf("%d fixes before the ender of epoch 2, want 2", len(fixes))
	}
	d.Write(nmeaLines(gsaBody(6)))
	if len(fixes) != 3 {
		t.Fatalf("%d fixes after the ender of epoch 2, want 3", len(fixes))
	}
	for i, want := range []int{-1, -1, 6} {
		if fixes[i].Sats != want {
			t.Errorf("fix %d: sats %d, want %d (a GSA after the pause leaks into the next epoch)", i, fixes[i].Sats, want)
		}
	}
	if s := c.Snapshot(); s.Late != 0 {
		t.Errorf("late = %d, want 0", s.Late)
	}
}

// TestEnderSurvivesOneOddCycle: a cycle whose ender is lost (bad checksum)
// closes on the next time of day; the ender stays learned, and the next
// epoch closes on it again.
func TestEnderSurvivesOneOddCycle(t *testing.T) {
	var fixes []Fix
	d := NewDecoder(func(f Fix) { fixes = append(fixes, f) }, nil, nil)
	tods := []string{"120000.00", "120001.00", "120002.00", "120003.00", "120004.00"}
	for _, tod := range tods[:3] {
		d.Write(nmeaLines(rmcBody(tod), ggaBody(tod), gsaBody(5)))
	}
	if len(fixes) != 3 {
		t.Fatalf("%d fixes, want 3: the third on its GSA", len(fixes))
	}
	lost := nmeaLines(gsaBody(5))
	lost[len(lost)-3] ^= 1 // a bad checksum
	d.Write(append(nmeaLines(rmcBody(tods[3]), ggaBody(tods[3])), lost...))
	if len(fixes) != 3 {
		t.Fatalf("%d fixes, want 3: epoch 3 has no ender", len(fixes))
	}
	d.Write(nmeaLines(rmcBody(tods[4]), ggaBody(tods[4])))
	if len(fixes) != 4 {
		t.Fatalf("%d fixes, want 4: epoch 3 closed by the next time of day", len(fixes))
	}
	d.Write(nmeaLines(gsaBody(5)))
	if len(fixes) != 5 {
		t.Fatalf("%d fixes, want 5: epoch 4 closed on its GSA, the ender kept", len(fixes))
	}
}

// TestLateAfterWrongEnder: a timed sentence after the learned ender proves
// it was not the last: counted in Late and the ender forgotten; two cycles
// later the new last sentence is the ender.
func TestLateAfterWrongEnder(t *testing.T) {
	var c Counters
	var fixes []Fix
	d := NewDecoder(func(f Fix) { fixes = append(fixes, f) }, &c, nil)
	tods := []string{"120000.00", "120001.00", "120002.00", "120003.00", "120004.00", "120005.00"}
	for _, tod := range tods[:3] {
		d.Write(nmeaLines(rmcBody(tod), ggaBody(tod)))
	}
	if len(fixes) != 3 {
		t.Fatalf("%d fixes, want 3: the third on its GGA", len(fixes))
	}
	for _, tod := range tods[3:] {
		d.Write(nmeaLines(rmcBody(tod), ggaBody(tod), gllBody(tod)))
	}
	if s := c.Snapshot(); s.Late != 1 {
		t.Errorf("late = %d, want 1: the GLL after the GGA that closed epoch 3", s.Late)
	}
	if d.asm.ender.key != makeKey("GP", "GLL") {
		t.Errorf("ender %s, want GPGLL", d.asm.ender.key)
	}
	if len(fixes) != 6 {
		t.Errorf("%d fixes, want 6: epoch 5 closed on its GLL", len(fixes))
	}
}
