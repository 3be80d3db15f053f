package main

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

// SchemaVersion is the record's "v". Data engineers build on this schema (docs/record.schema.json,
// docs/redshift.sql): add fields freely, but renaming or retyping one is a new version.
const SchemaVersion = 1

// recordEncoder writes schema-v1 records: one compact JSON object per fix. Fields whose value the receiver did not
// report are left out rather than written as null: every byte is paid for on a cellular link, and Redshift's
// JSON_PARSE reads a missing key as NULL all the same.
//
// It appends by hand rather than through encoding/json: the schema is small and fixed, and the agent encodes
// every fix on a 1 GHz ARM core.
type recordEncoder struct {
	truckID []byte // truck_id as a JSON string, quoted and escaped once
}

func newRecordEncoder(truckID string) *recordEncoder {
	q, _ := json.Marshal(truckID) // a string always marshals
	return &recordEncoder{truckID: q}
}

// encode appends the record of fix f with sequence number seq, received by the gateway at rx, to dst.
func (e *recordEncoder) encode(dst []byte, seq uint64, f nmea.Fix, rx time.Time) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, SchemaVersion, 10)
	dst = append(dst, `,"truck_id":`...)
	dst = append(dst, e.truckID...)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"ts":"`...)
	dst = f.Time.UTC().AppendFormat(dst, timeLayout)
	dst = append(dst, `","lat":`...)
	dst = strconv.AppendFloat(dst, f.Lat, 'f', 7, 64)
	dst = append(dst, `,"lon":`...)
	dst = strconv.AppendFloat(dst, f.Lon, 'f', 7, 64)
	dst = appendOptFloat(dst, `,"speed_kmh":`, f.SpeedKmh, 2)
	dst = appendOptFloat(dst, `,"course_deg":`, f.CourseDeg, 1)
	dst = appendOptFloat(dst, `,"alt_m":`, f.AltM, 1)
	dst = append(dst, `,"fix":`...)
	dst = strconv.AppendInt(dst, int64(f.Quality), 10)
	if f.Sats >= 0 {
		dst = append(dst, `,"sats":`...)
		dst = strconv.AppendInt(dst, int64(f.Sats), 10)
	}
	dst = appendOptFloat(dst, `,"hdop":`, f.HDOP, 2)
	if f.DateSource != "" && f.DateSource != nmea.DateRMC {
		// Only the uncommon sources are written: most receivers date every epoch with RMC.
		dst = append(dst, `,"date_src":"`...)
		dst = append(dst, f.DateSource...)
		dst = append(dst, '"')
	}
	if !rx.IsZero() {
		dst = append(dst, `,"rx":"`...)
		dst = rx.UTC().AppendFormat(dst, timeLayout)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// timeLayout is RFC 3339 in UTC with milliseconds, as Redshift's TIMESTAMPTZ casts read it.
const timeLayout = "2006-01-02T15:04:05.000Z"

func appendOptFloat(dst []byte, key string, v float64, prec int) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return dst
	}
	dst = append(dst, key...)
	return strconv.AppendFloat(dst, v, 'f', prec, 64)
}

// Record is schema v1 decoded, for tests and for tools that read records back.
type Record struct {
	V         int       `json:"v"`
	TruckID   string    `json:"truck_id"`
	Seq       uint64    `json:"seq"`
	TS        time.Time `json:"ts"`
	Lat       float64   `json:"lat"`
	Lon       float64   `json:"lon"`
	SpeedKmh  *float64  `json:"speed_kmh,omitempty"`
	CourseDeg *float64  `json:"course_deg,omitempty"`
	AltM      *float64  `json:"alt_m,omitempty"`
	Fix       int       `json:"fix"`
	Sats      *int      `json:"sats,omitempty"`
	HDOP      *float64  `json:"hdop,omitempty"`
	DateSrc   string    `json:"date_src,omitempty"`
	RX        time.Time `json:"rx,omitzero"`
}
