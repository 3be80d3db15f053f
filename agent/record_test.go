package main

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

// decodeRecord parses a schema-v1 record strictly: unknown fields and a wrong version are errors.
func decodeRecord(data []byte) (Record, error) {
	var r Record
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, err
	}
	if r.V != SchemaVersion {
		return r, &json.UnsupportedValueError{Str: "v"}
	}
	return r, nil
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
			want: `{"v":1,"truck_id":"TRK-7","seq":42,"ts":"2026-11-25T15:52:14.250Z","lat":48.1173000,"lon":-11.5166667,"speed_kmh":41.48,"course_deg":84.4,"alt_m":545.4,"fix":1,"sats":8,"hdop":0.90,"rx":"2026-11-25T15:52:14.550Z"}`,
		},
		{
			name: "date carried from an earlier epoch",
			fix:  nmea.Fix{Time: ts, Lat: 1, Lon: 2, SpeedKmh: math.NaN(), CourseDeg: math.NaN(), AltM: math.NaN(), Quality: 1, Sats: -1, HDOP: math.NaN(), DateSource: nmea.DateCarried},
			want: `{"v":1,"truck_id":"TRK-7","seq":42,"ts":"2026-11-25T15:52:14.250Z","lat":1.0000000,"lon":2.0000000,"fix":1,"date_src":"carried"}`,
		},
		{
			name: "unknowns omitted",
			fix:  nmea.Fix{Time: ts, Lat: -33.5, Lon: 151.25, SpeedKmh: math.NaN(), CourseDeg: math.NaN(), AltM: math.NaN(), Quality: 2, Sats: -1, HDOP: math.NaN()},
			want: `{"v":1,"truck_id":"TRK-7","seq":42,"ts":"2026-11-25T15:52:14.250Z","lat":-33.5000000,"lon":151.2500000,"fix":2}`,
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
				t.Fatalf("record does not parse as schema v1: %v", err)
			}
			if r.Seq != 42 || !r.TS.Equal(tt.fix.Time) || r.TruckID != "TRK-7" {
				t.Errorf("decoded %+v", r)
			}
		})
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
