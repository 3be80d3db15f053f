package main

import "testing"

// streamtail reads the records agents write (schema v2) and those older agents wrote (v1), and says what it
// cannot read rather than printing an empty row.
func TestParseRow(t *testing.T) {
	for name, data := range map[string]string{
		"v2": `{"v":2,"truck_id":"TRK-0042","seq":1812,"ts":"2026-11-25T15:52:14.000Z","lat":53.54389,"lon":9.990906,` +
			`"speed_kmh":28.7,"course_deg":152.3,"alt_m":12.4,"fix":1,"sats":9,"hdop":0.9,"rx":310}`,
		"v1": `{"v":1,"truck_id":"TRK-0042","seq":1812,"ts":"2026-11-25T15:52:14.000Z","lat":53.5438900,"lon":9.9909060,` +
			`"speed_kmh":28.70,"course_deg":152.3,"alt_m":12.4,"fix":1,"sats":9,"hdop":0.90,"rx":"2026-11-25T15:52:14.310Z"}`,
	} {
		r, err := parseRow([]byte(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.TruckID != "TRK-0042" || r.Seq != 1812 || r.Lat != 53.54389 || r.SpeedKmh == nil || *r.SpeedKmh != 28.7 ||
			r.Sats == nil || *r.Sats != 9 || r.how(1e18) != "live" {
			t.Errorf("%s reads as %+v", name, r)
		}
	}
	for name, data := range map[string]string{
		"not JSON":                `hello`,
		"schema v3":               `{"v":3,"truck_id":"TRK-0042","seq":1}`,
		"short-keyed draft of v2": `{"v":2,"id":"TRK-0042","seq":1812,"ts":"2026-11-25T15:52:14Z","lat":53.54389,"lon":9.990906}`,
	} {
		if r, err := parseRow([]byte(data)); err == nil {
			t.Errorf("%s reads as %+v", name, r)
		}
	}
}
