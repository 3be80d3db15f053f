package main

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

// decodeRecord parses a record of the current schema strictly: unknown fields and a wrong version are errors.
func decodeRecord(data []byte) (Record, error) {
	var w recordV2
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Record{}, err
	}
	if w.V != SchemaVersion {
		return Record{}, &json.UnsupportedValueError{Str: "v"}
	}
	return w.record(), nil
}

func TestEncodeRecord(t *testing.T) {
	ts := time.Date(2026, 11, 25, 15, 52, 14, 250_000_000, time.UTC)
	rx := ts.Add(300 * time.Millisecond)
	tests := []struct {
		name string
		fix  nmea.Fix
		rx   time.Time
		want string
	}{
		{
			name: "full fix",
			fix:  nmea.Fix{Time: ts, Lat: 48.1173, Lon: -11.5166667, SpeedKmh: 41.4848, CourseDeg: 84.4, AltM: 545.4, Quality: 1, Sats: 8, HDOP: 0.9, DateSource: nmea.DateRMC},
			rx:   rx,
			want: `{"v":2,"truck_id":"TRK-7","seq":42,"ts":"2026-11-25T15:52:14.250Z","lat":48.1173,"lon":-11.5166667,"speed_kmh":41.48,"course_deg":84.4,"alt_m":545.4,"fix":1,"sats":8,"hdop":0.9,"rx":300}`,
		},
		{
			name: "date carried from an earlier epoch",
			fix:  nmea.Fix{Time: ts, Lat: 1, Lon: 2, SpeedKmh: math.NaN(), CourseDeg: math.NaN(), AltM: math.NaN(), Quality: 1, Sats: -1, HDOP: math.NaN(), DateSource: nmea.DateCarried},
			want: `{"v":2,"truck_id":"TRK-7","seq":42,"ts":"2026-11-25T15:52:14.250Z","lat":1,"lon":2,"fix":1,"date_src":"carried"}`,
		},
		{
			name: "whole second: ts keeps its milliseconds",
			fix:  nmea.Fix{Time: ts.Truncate(time.Second), Lat: 48.1, Lon: 11.5, SpeedKmh: 0, CourseDeg: math.NaN(), AltM: math.NaN(), Quality: 1, Sats: 4, HDOP: math.NaN()},
			rx:   ts.Truncate(time.Second).Add(-20 * time.Millisecond),
			want: `{"v":2,"truck_id":"TRK-7","seq":42,"ts":"2026-11-25T15:52:14.000Z","lat":48.1,"lon":11.5,"speed_kmh":0,"fix":1,"sats":4,"rx":-20}`,
		},
		{
			name: "unknowns omitted",
			fix:  nmea.Fix{Time: ts, Lat: -33.5, Lon: 151.25, SpeedKmh: math.NaN(), CourseDeg: math.NaN(), AltM: math.NaN(), Quality: 2, Sats: -1, HDOP: math.NaN()},
			want: `{"v":2,"truck_id":"TRK-7","seq":42,"ts":"2026-11-25T15:52:14.250Z","lat":-33.5,"lon":151.25,"fix":2}`,
		},
	}
	enc := newRecordEncoder("TRK-7")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := enc.encode(nil, 42, tt.fix, tt.rx)
			if string(got) != tt.want {
				t.Errorf("encode =\n%s\nwant\n%s", got, tt.want)
			}
			checkSchema(t, got)
			r, err := decodeRecord(got)
			if err != nil {
				t.Fatalf("record does not parse as schema v%d: %v", SchemaVersion, err)
			}
			if r.Seq != 42 || !r.TS.Equal(tt.fix.Time) || r.TruckID != "TRK-7" || !r.RX.Equal(tt.rx) {
				t.Errorf("decoded %+v", r)
			}
			if p, err := parseRecord(got); err != nil || !reflect.DeepEqual(p, r) {
				t.Errorf("parseRecord = %+v, %v; want %+v", p, err, r)
			}
		})
	}
}

// A v2 record carries what a v1 record did, in fewer bytes; parseRecord reads both (a buffer written by an older
// agent holds v1 records until they are sent).
func TestRecordV2AgainstV1(t *testing.T) {
	v1 := `{"v":1,"truck_id":"TRK-0042","seq":1812,"ts":"2026-11-25T15:52:14.000Z","lat":53.5438900,"lon":9.9909060,` +
		`"speed_kmh":28.70,"course_deg":152.3,"alt_m":12.4,"fix":1,"sats":9,"hdop":0.90,"rx":"2026-11-25T15:52:14.310Z"}`
	ts := time.Date(2026, 11, 25, 15, 52, 14, 0, time.UTC)
	f := nmea.Fix{Time: ts, Lat: 53.54389, Lon: 9.990906, SpeedKmh: 28.7, CourseDeg: 152.3, AltM: 12.4, Quality: 1, Sats: 9,
		HDOP: 0.9, DateSource: nmea.DateRMC}
	v2 := newRecordEncoder("TRK-0042").encode(nil, 1812, f, ts.Add(310*time.Millisecond))
	checkSchema(t, v2)
	old, err := parseRecord([]byte(v1))
	if err != nil {
		t.Fatalf("parse v1: %v", err)
	}
	cur, err := parseRecord(v2)
	if err != nil {
		t.Fatalf("parse v2: %v", err)
	}
	old.V, cur.V = 0, 0
	if !reflect.DeepEqual(old, cur) {
		t.Errorf("v1 reads as %+v\nv2 reads as %+v", old, cur)
	}
	t.Logf("v1 %d B, v2 %d B: %s", len(v1), len(v2), v2)
	if saved := len(v1) - len(v2); saved < 25 {
		t.Errorf("v2 saves %d B of %d, want >= 25", saved, len(v1))
	}
	for name, bad := range map[string]string{
		"schema v3": `{"v":3,"truck_id":"T-1","seq":1}`,
		"short-keyed draft of v2": `{"v":2,"id":"TRK-0042","seq":1812,"ts":"2026-11-25T15:52:14Z","lat":53.54389,"lon":9.990906,` +
			`"kmh":28.7,"cog":152.3,"alt":12.4,"fix":1,"sats":9,"hdop":0.9,"rx":310}`,
	} {
		if r, err := parseRecord([]byte(bad)); err == nil {
			t.Errorf("parseRecord reads the %s: %+v", name, r)
		}
	}
}

// contractKeys are the fields DESIGN's "Record" promises the data engineers, under these names in every version.
var contractKeys = []string{"v", "truck_id", "seq", "ts", "lat", "lon", "speed_kmh", "course_deg", "alt_m", "fix", "sats", "hdop"}

// The record keeps the contract with the data engineers (DESIGN "Record"): its names, ts as RFC 3339 with
// milliseconds (".000Z" on whole seconds), lat/lon to 1e-7 degrees. Bytes are saved only outside it.
func TestRecordKeepsContract(t *testing.T) {
	ts := time.Date(2026, 11, 25, 15, 52, 14, 0, time.UTC)
	f := nmea.Fix{Time: ts, Lat: -53.5438901, Lon: 179.9999999, SpeedKmh: 28.7, CourseDeg: 152.3, AltM: 12.4, Quality: 1,
		Sats: 9, HDOP: 0.9, DateSource: nmea.DateZDA}
	data := newRecordEncoder("TRK-0042").encode(nil, 1812, f, ts.Add(310*time.Millisecond))
	checkSchema(t, data)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range contractKeys {
		if _, ok := m[k]; !ok {
			t.Errorf("contract field %q missing from %s", k, data)
		}
		delete(m, k)
	}
	for k := range m {
		if k != "rx" && k != "date_src" {
			t.Errorf("field %q is in no version of the contract: %s", k, data)
		}
	}
	if !bytes.Contains(data, []byte(`"ts":"2026-11-25T15:52:14.000Z"`)) {
		t.Errorf("ts of a whole second without its milliseconds: %s", data)
	}
	r, err := parseRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Lat != f.Lat || r.Lon != f.Lon {
		t.Errorf("lat/lon %v/%v read back as %v/%v: %s", f.Lat, f.Lon, r.Lat, r.Lon, data)
	}
}

func BenchmarkEncodeRecord(b *testing.B) {
	enc := newRecordEncoder("TRK-0042")
	f := nmea.Fix{Time: time.Now(), Lat: 48.1173, Lon: 11.5166667, SpeedKmh: 41.48, CourseDeg: 84.4, AltM: 545.4, Quality: 1, Sats: 8, HDOP: 0.9}
	var buf []byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = enc.encode(buf[:0], uint64(i), f, f.Time)
	}
}
