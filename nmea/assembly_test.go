package nmea

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// wantFix is what a test checks of a Fix: NaN fields are not checked.
type wantFix struct {
	time       string // RFC 3339 with ms
	lat, lon   float64
	speedKmh   float64
	courseDeg  float64
	altM       float64
	quality    int
	sats       int
	hdop       float64
	dateSource string
}

func nan() float64 { return math.NaN() }

func checkFix(t *testing.T, i int, got Fix, w wantFix) {
	t.Helper()
	if ts := got.Time.Format("2006-01-02T15:04:05.000Z07:00"); ts != w.time {
		t.Errorf("fix %d: time %s, want %s", i, ts, w.time)
	}
	near := func(name string, g, w, tol float64) {
		if math.IsNaN(w) {
			return
		}
		if math.IsNaN(g) || math.Abs(g-w) > tol {
			t.Errorf("fix %d: %s %v, want %v", i, name, g, w)
		}
	}
	near("lat", got.Lat, w.lat, 1e-6)
	near("lon", got.Lon, w.lon, 1e-6)
	near("speed", got.SpeedKmh, w.speedKmh, 1e-3)
	near("course", got.CourseDeg, w.courseDeg, 1e-6)
	near("alt", got.AltM, w.altM, 1e-6)
	near("hdop", got.HDOP, w.hdop, 1e-6)
	if w.quality != 0 && got.Quality != w.quality {
		t.Errorf("fix %d: quality %d, want %d", i, got.Quality, w.quality)
	}
	if w.sats != 0 && got.Sats != w.sats {
		t.Errorf("fix %d: sats %d, want %d", i, got.Sats, w.sats)
	}
	if got.DateSource != w.dateSource {
		t.Errorf("fix %d: date source %q, want %q", i, got.DateSource, w.dateSource)
	}
}

// Munich, 48°07.038' N 11°31.000' E (the NMEA 0183 textbook RMC).
const (
	muLat = 48 + 7.038/60
	muLon = 11 + 31.0/60
)

// assemblyCase is an epoch's sentences and what the decoder makes of them.
type assemblyCase struct {
	name   string
	lines  []string
	want   []wantFix
	noFix  uint64 // Stats.NoFix expected, checked always
	noDate uint64
}

// mixedEpochs are epochs whose sentences disagree on whether there is a
// fix. The most trusted sentence that states the fix status decides (GGA,
// then GNS, RMC, GLL; GSA never), whatever the order; a field left empty
// states nothing.
var mixedEpochs = []assemblyCase{
	{
		name: "RMC A, GGA quality 0 with 0 satellites: GGA says no fix",
		lines: []string{
			"GPRMC,125106,A,4807.038,N,01131.000,E,0.0,,241011,,,A",
			"GPGGA,125106,4807.038,N,01131.000,E,0,00,99.9,,M,,M,,",
		},
		noFix: 1,
	},
	{
		name: "RMC V, GGA quality 1: GGA says fix",
		lines: []string{
			"GPRMC,125106,V,4807.038,N,01131.000,E,1.0,90.0,241011,,,N",
			"GPGGA,125106,4807.038,N,01131.000,E,1,07,1.2,500.0,M,47.0,M,,",
		},
		want: []wantFix{{time: "2011-10-24T12:51:06.000Z", lat: muLat, lon: muLon, speedKmh: 1.852, courseDeg: 90,
			altM: 500, quality: 1, sats: 7, hdop: 1.2, dateSource: DateRMC}},
	},
	{
		name: "GGA with its quality empty states nothing: RMC A decides",
		lines: []string{
			"GPGGA,005947.00,4807.038,N,01131.000,E,,11,0.8,86.0,M,-30.1,M,,",
			"GPRMC,005947.00,A,4807.038,N,01131.000,E,0.0,0.0,080710,,",
		},
		want: []wantFix{{time: "2010-07-08T00:59:47.000Z", lat: muLat, lon: muLon, speedKmh: 0, courseDeg: 0,
			altM: nan(), quality: 1, sats: -1, hdop: nan(), dateSource: DateRMC}},
	},
	{
		name: "GNS mode NN, RMC A: GNS says no fix",
		lines: []string{
			"GNRMC,125106,A,4807.038,N,01131.000,E,0.0,,241011,,,A",
			"GNGNS,125106,4807.038,N,01131.000,E,NN,00,,,,,",
		},
		noFix: 1,
	},
	{
		name: "RMC V, GLL A: RMC says no fix",
		lines: []string{
			"GPRMC,125106,V,,,,,,,241011,,,N",
			"GPGLL,4807.038,N,01131.000,E,125106,A,A",
		},
		noFix: 1,
	},
	{
		name: "GLL V, RMC A: RMC says fix",
		lines: []string{
			"GPGLL,4807.038,N,01131.000,E,125106,V,N",
			"GPRMC,125106,A,4807.038,N,01131.000,E,0.0,,241011,,,A",
		},
		want: []wantFix{{time: "2011-10-24T12:51:06.000Z", lat: muLat, lon: muLon, speedKmh: 0, courseDeg: nan(),
			altM: nan(), quality: 1, sats: -1, hdop: nan(), dateSource: DateRMC}},
	},
	{
		name: "GSA without a fix never decides: RMC A, GGA 1 say fix",
		lines: []string{
			"GPRMC,125106,A,4807.038,N,01131.000,E,0.0,,241011,,,A",
			"GPGGA,125106,4807.038,N,01131.000,E,1,07,1.2,500.0,M,47.0,M,,",
			"GPGSA,A,1,,,,,,,,,,,,,99.9,99.9,99.9",
		},
		want: []wantFix{{time: "2011-10-24T12:51:06.000Z", lat: muLat, lon: muLon, speedKmh: 0, courseDeg: nan(),
			altM: 500, quality: 1, sats: 7, hdop: 1.2, dateSource: DateRMC}},
	},
}

func TestEpochAssembly(t *testing.T) {
	tests := []assemblyCase{
		{
			name:  "RMC alone",
			lines: []string{"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"},
			want: []wantFix{{time: "1994-03-23T12:35:19.000Z", lat: muLat, lon: muLon, speedKmh: 22.4 * 1.852,
				courseDeg: 84.4, altM: nan(), quality: 1, sats: -1, hdop: nan(), dateSource: DateRMC}},
		},
		{
			name: "RMC GGA VTG GSA u-blox GN",
			lines: []string{
				"GNRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A",
				"GNVTG,77.52,T,,M,0.004,N,0.008,K,A",
				"GNGGA,083559.00,4717.11437,N,00833.91522,E,1,08,1.01,499.6,M,48.0,M,,",
				"GNGSA,A,3,23,29,07,08,09,18,26,,,,,,1.94,1.01,1.66",
				"GNGLL,4717.11437,N,00833.91522,E,083559.00,A,A",
			},
			want: []wantFix{{time: "2002-12-09T08:35:59.000Z", lat: 47 + 17.11437/60, lon: 8 + 33.91522/60,
				speedKmh: 0.004 * 1.852, courseDeg: 77.52, altM: 499.6, quality: 1, sats: 8, hdop: 1.01, dateSource: DateRMC}},
		},
		{
			name: "GNS and ZDA, no RMC",
			lines: []string{
				"GNGNS,122310.20,3722.425671,N,12258.856215,W,DAAA,14,0.9,1005.543,6.5,,",
				"GNZDA,122310.20,15,07,2026,00,00",
			},
			want: []wantFix{{time: "2026-07-15T12:23:10.200Z", lat: 37 + 22.425671/60, lon: -(122 + 58.856215/60),
				speedKmh: nan(), courseDeg: nan(), altM: 1005.543, quality: 2, sats: 14, hdop: 0.9, dateSource: DateZDA}},
		},
		{
			name: "ZDA wins over RMC date",
			lines: []string{
				"GPRMC,235959.00,A,4807.038,N,01131.000,E,0.0,,311299,,,A",
				"GPZDA,235959.00,31,12,2099,00,00",
			},
			want: []wantFix{{time: "2099-12-31T23:59:59.000Z", lat: muLat, lon: muLon, speedKmh: 0, courseDeg: nan(),
				altM: nan(), quality: 1, sats: -1, hdop: nan(), dateSource: DateZDA}},
		},
		{
			name: "GGA VTG ZDA then GGA VTG: date carried",
			lines: []string{
				"GPGGA,100000.00,4807.038,N,01131.000,E,2,09,0.9,520.1,M,47.9,M,1.2,0101",
				"GPVTG,180.0,T,,M,10.0,N,18.52,K,D",
				"GPZDA,100000.00,01,02,2026,00,00",
				"GPGGA,100001.00,4807.038,N,01131.000,E,2,09,0.9,520.2,M,47.9,M,1.2,0101",
				"GPVTG,180.0,T,,M,10.0,N,18.52,K,D",
			},
			want: []wantFix{
				{time: "2026-02-01T10:00:00.000Z", lat: muLat, lon: muLon, speedKmh: 18.52, courseDeg: 180,
					altM: 520.1, quality: 2, sats: 9, hdop: 0.9, dateSource: DateZDA},
				{time: "2026-02-01T10:00:01.000Z", lat: muLat, lon: muLon, speedKmh: 18.52, courseDeg: 180,
					altM: 520.2, quality: 2, sats: 9, hdop: 0.9, dateSource: DateCarried},
			},
		},
		{
			name: "carried date advances past midnight",
			lines: []string{
				"GPRMC,235959,A,4807.038,N,01131.000,E,0.0,,280226,,,A",
				"GPGGA,000000,4807.038,N,01131.000,E,1,05,1.5,10.0,M,,M,,",
			},
			want: []wantFix{
				{time: "2026-02-28T23:59:59.000Z", lat: muLat, lon: muLon, speedKmh: 0, courseDeg: nan(), altM: nan(),
					quality: 1, sats: -1, hdop: nan(), dateSource: DateRMC},
				{time: "2026-03-01T00:00:00.000Z", lat: muLat, lon: muLon, speedKmh: nan(), courseDeg: nan(), altM: 10,
					quality: 1, sats: 5, hdop: 1.5, dateSource: DateCarried},
			},
		},
		{
			name: "GGA before any date is dated by the next epoch",
			lines: []string{
				"GPGGA,085032.00,5355.17581,N,02730.04649,E,1,04,17.30,267.5,M,25.0,M,,",
				"GPRMC,085033.00,A,5355.17512,N,02730.04479,E,0.835,284.07,050210,,,A",
			},
			want: []wantFix{
				{time: "2010-02-05T08:50:32.000Z", lat: 53 + 55.17581/60, lon: 27 + 30.04649/60, speedKmh: nan(),
					courseDeg: nan(), altM: 267.5, quality: 1, sats: 4, hdop: 17.3, dateSource: DateCarried},
				{time: "2010-02-05T08:50:33.000Z", lat: 53 + 55.17512/60, lon: 27 + 30.04479/60, speedKmh: 0.835 * 1.852,
					courseDeg: 284.07, altM: nan(), quality: 1, sats: -1, hdop: nan(), dateSource: DateRMC},
			},
		},
		{
			name:   "GGA with no date ever: counted, not delivered",
			lines:  []string{"GPGGA,085032.00,5355.17581,N,02730.04649,E,1,04,17.30,267.5,M,25.0,M,,"},
			noDate: 0, // held for a date that never comes; Flush does not invent one
		},
		{
			name: "GLL only, date carried from RMC",
			lines: []string{
				"GPRMC,120000,A,4807.038,N,01131.000,E,0.0,,010126,,,A",
				"GPGLL,4807.040,N,01131.000,E,120001,A,A",
			},
			want: []wantFix{
				{time: "2026-01-01T12:00:00.000Z", lat: muLat, lon: muLon, speedKmh: 0, courseDeg: nan(), altM: nan(),
					quality: 1, sats: -1, hdop: nan(), dateSource: DateRMC},
				{time: "2026-01-01T12:00:01.000Z", lat: 48 + 7.040/60, lon: muLon, speedKmh: nan(), courseDeg: nan(),
					altM: nan(), quality: 1, sats: -1, hdop: nan(), dateSource: DateCarried},
			},
		},
		{
			name: "mixed talkers in one epoch",
			lines: []string{
				"GNRMC,101010.00,A,4807.038,N,01131.000,E,5.0,90.0,020326,,,D",
				"GPGGA,101010.00,4807.038,N,01131.000,E,2,12,0.7,500.0,M,47.0,M,,",
				"GPGSA,A,3,01,02,03,04,05,06,,,,,,,1.2,0.7,1.0",
				"GLGSA,A,3,65,66,67,,,,,,,,,,1.2,0.7,1.0",
				"GAGSA,A,3,11,12,,,,,,,,,,,1.2,0.7,1.0",
				"GPGSV,1,1,01,01,40,083,46",
				"GLGSV,1,1,01,65,40,083,46",
				"GBGSV,1,1,01,201,40,083,46",
			},
			want: []wantFix{{time: "2026-03-02T10:10:10.000Z", lat: muLat, lon: muLon, speedKmh: 5 * 1.852,
				courseDeg: 90, altM: 500, quality: 2, sats: 12, hdop: 0.7, dateSource: DateRMC}},
		},
		{
			name: "satellites and HDOP from GSA when there is no GGA",
			lines: []string{
				"GNRMC,101010.00,A,4807.038,N,01131.000,E,5.0,90.0,020326,,,A",
				"GNGSA,A,3,01,02,03,04,05,06,,,,,,,1.2,0.7,1.0",
				"GNGSA,A,3,65,66,67,,,,,,,,,,1.2,0.7,1.0",
			},
			want: []wantFix{{time: "2026-03-02T10:10:10.000Z", lat: muLat, lon: muLon, speedKmh: 5 * 1.852,
				courseDeg: 90, altM: nan(), quality: 1, sats: 9, hdop: 0.7, dateSource: DateRMC}},
		},
		{
			name: "two-digit years pivot at 80",
			lines: []string{
				"GPRMC,000001,A,4807.038,N,01131.000,E,0.0,,010180,,,A",
				"GPRMC,000002,A,4807.038,N,01131.000,E,0.0,,010179,,,A",
			},
			want: []wantFix{
				{time: "1980-01-01T00:00:01.000Z", lat: muLat, lon: muLon, speedKmh: 0, courseDeg: nan(), altM: nan(),
					quality: 1, sats: -1, hdop: nan(), dateSource: DateRMC},
				{time: "2079-01-01T00:00:02.000Z", lat: muLat, lon: muLon, speedKmh: 0, courseDeg: nan(), altM: nan(),
					quality: 1, sats: -1, hdop: nan(), dateSource: DateRMC},
			},
		},
		{
			name:  "RMC status V",
			lines: []string{"GPRMC,125106,V,3854.5087,N,07726.4523,W,0.0,0.0,241011,10.5,W,N"},
			noFix: 1,
		},
		{
			name:  "RMC mode N with status A",
			lines: []string{"GPRMC,125106,A,3854.5087,N,07726.4523,W,0.0,0.0,241011,,,N"},
			noFix: 1,
		},
		{
			name:  "RMC mode S: simulator",
			lines: []string{"GPRMC,125106,A,3854.5087,N,07726.4523,W,0.0,0.0,241011,,,S"},
			noFix: 1,
		},
		{
			name: "GGA quality 0 with ZDA",
			lines: []string{
				"GPGGA,125106,3854.5087,N,07726.4523,W,0,00,99.9,,M,,M,,",
				"GPZDA,125106,24,10,2011,00,00",
			},
			noFix: 1,
		},
		{
			name: "GGA quality 8: simulator",
			lines: []string{
				"GPGGA,125106,3854.5087,N,07726.4523,W,8,10,2.0,268.8,M,-33.9,M,,",
				"GPZDA,125106,24,10,2011,00,00",
			},
			noFix: 1,
		},
		{
			name: "GNS mode NN",
			lines: []string{
				"GNGNS,125106,,,,,NN,00,,,,,",
				"GNZDA,125106,24,10,2011,00,00",
			},
			noFix: 1,
		},
		{
			name: "GLL status V",
			lines: []string{
				"GPGLL,3854.5087,N,07726.4523,W,125106,V,N",
				"GPZDA,125106,24,10,2011,00,00",
			},
			noFix: 1,
		},
		{
			name: "GGA with 0 satellites repeats a stale position",
			lines: []string{
				"GPGGA,125106,3854.5087,N,07726.4523,W,1,00,2.0,268.8,M,-33.9,M,,",
				"GPZDA,125106,24,10,2011,00,00",
			},
			noFix: 1,
		},
	}
	for _, tc := range append(tests, mixedEpochs...) {
		t.Run(tc.name, func(t *testing.T) {
			fixes, s := decodeAll(nmeaLines(tc.lines...))
			if len(fixes) != len(tc.want) {
				t.Fatalf("%d fixes %v, want %d (stats %s)", len(fixes), fixes, len(tc.want), s)
			}
			for i, w := range tc.want {
				checkFix(t, i, fixes[i], w)
			}
			if s.NoFix != tc.noFix || s.NoDate != tc.noDate {
				t.Errorf("no_fix=%d no_date=%d, want %d %d", s.NoFix, s.NoDate, tc.noFix, tc.noDate)
			}
			if s.Unparsable != 0 || s.BadChecksum != 0 {
				t.Errorf("stats %s: want no unparsable or bad checksum", s)
			}
		})
	}
}

// TestEveryTalker checks that a fix comes out whatever the talker of its
// sentences: GPS, multi-GNSS, GLONASS, Galileo, BeiDou (both IDs), QZSS,
// NavIC.
func TestEveryTalker(t *testing.T) {
	for _, talker := range []string{"GP", "GN", "GL", "GA", "GB", "BD", "GQ", "GI"} {
		t.Run(talker, func(t *testing.T) {
			fixes, s := decodeAll(nmeaLines(
				talker+"RMC,101010.00,A,4807.038,N,01131.000,E,5.0,90.0,020326,,,A",
				talker+"GGA,101010.00,4807.038,N,01131.000,E,1,07,1.1,500.0,M,47.0,M,,",
				talker+"GSA,A,3,01,02,03,04,05,06,07,,,,,,1.9,1.1,1.5",
				talker+"GNS,101011.00,4807.039,N,01131.000,E,AA,07,1.1,500.0,47.0,,",
				talker+"ZDA,101011.00,02,03,2026,00,00",
			))
			if len(fixes) != 2 {
				t.Fatalf("%d fixes, want 2 (stats %s)", len(fixes), s)
			}
			checkFix(t, 0, fixes[0], wantFix{time: "2026-03-02T10:10:10.000Z", lat: muLat, lon: muLon,
				speedKmh: 5 * 1.852, courseDeg: 90, altM: 500, quality: 1, sats: 7, hdop: 1.1, dateSource: DateRMC})
			checkFix(t, 1, fixes[1], wantFix{time: "2026-03-02T10:10:11.000Z", lat: 48 + 7.039/60, lon: muLon,
				speedKmh: nan(), courseDeg: nan(), altM: 500, quality: 1, sats: 7, hdop: 1.1, dateSource: DateZDA})
		})
	}
}

// TestFixOnEnderSentence: once the decoder has learned the cycle ender, a
// fix leaves on the ender sentence itself, before any byte of the next
// epoch, not when the next epoch's time arrives.
func TestFixOnEnderSentence(t *testing.T) {
	sim := &Simulator{Seed: 3, Start: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	var fixes []Fix
	d := NewDecoder(func(f Fix) { fixes = append(fixes, f) }, nil, nil)
	const learn = 3 // epochs to learn the ender: two time changes ending on the same sentence
	for i := 0; i < learn; i++ {
		d.Write(sim.Epoch(i))
	}
	for i := learn; i < learn+5; i++ {
		lines := strings.SplitAfter(string(sim.Epoch(i)), "\n")
		lines = lines[:len(lines)-1] // after the last "\n"
		for k, l := range lines {
			before := len(fixes)
			d.Write([]byte(l))
			last := k == len(lines)-1
			switch {
			case last && len(fixes) != before+1:
				t.Fatalf("epoch %d: no fix on its last sentence %q", i, strings.TrimSpace(l))
			case last && !fixes[len(fixes)-1].Time.Equal(sim.Fix(i).Time):
				t.Fatalf("epoch %d: fix for %v on its last sentence", i, fixes[len(fixes)-1].Time)
			case !last && len(fixes) != before && !fixes[len(fixes)-1].Time.Before(sim.Fix(i).Time):
				t.Fatalf("epoch %d: fix before its last sentence, on %q", i, strings.TrimSpace(l))
			}
		}
	}
}

// TestFixStatusAnyOrder: a mixed epoch gives the same fix, or the same lack
// of one, with its sentences in reverse order (gpsd takes the last one's
// word, so its verdict flips with the order).
func TestFixStatusAnyOrder(t *testing.T) {
	for _, tc := range mixedEpochs {
		t.Run(tc.name, func(t *testing.T) {
			lines := slices.Clone(tc.lines)
			slices.Reverse(lines)
			fixes, s := decodeAll(nmeaLines(lines...))
			if len(fixes) != len(tc.want) || s.NoFix != tc.noFix {
				t.Fatalf("reversed: %d fixes, no_fix=%d; want %d and %d", len(fixes), s.NoFix, len(tc.want), tc.noFix)
			}
			for i, w := range tc.want {
				checkFix(t, i, fixes[i], w)
			}
		})
	}
}
