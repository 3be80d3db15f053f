package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

// SchemaVersion is the record's "v". Data engineers build on this schema (docs/record.schema.json,
// docs/redshift.sql): add fields freely, but renaming or retyping one is a new version.
//
// Version 2 keeps every name and format of the contract (DESIGN "Record": truck_id, speed_kmh, course_deg, alt_m,
// ts as RFC 3339 with milliseconds) and saves bytes only where the contract leaves room: numbers without
// trailing zeros (they are JSON numbers either way), and the gateway's receive time as milliseconds after ts
// instead of a second timestamp (rx is retyped, hence the new version). Every fix a truck sends pays for its
// record on the data plan. Version 1 records still read (parseRecord), and the Redshift SQL takes both.
const SchemaVersion = 2

// recordEncoder writes schema-v2 records: one compact JSON object per fix. Fields whose value the receiver did not
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
	dst = append(dst, '"')
	dst = appendOptFloat(dst, `,"lat":`, f.Lat, 7)
	dst = appendOptFloat(dst, `,"lon":`, f.Lon, 7)
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
		// Only the uncommon sources are written (most receivers date every epoch with RMC), so the clear name
		// costs nothing on a usual fix.
		dst = append(dst, `,"date_src":"`...)
		dst = append(dst, f.DateSource...)
		dst = append(dst, '"')
	}
	if !rx.IsZero() {
		// Whole milliseconds after ts as written (both truncated), so ts + rx is the receive time to the ms.
		dst = append(dst, `,"rx":`...)
		dst = strconv.AppendInt(dst, rx.UnixMilli()-f.Time.UnixMilli(), 10)
	}
	return append(dst, '}')
}

// timeLayout is RFC 3339 in UTC with milliseconds, ".000" included on whole seconds: the contract's ts format
// (DESIGN "Record"), which Redshift's TIMESTAMPTZ cast reads.
const timeLayout = "2006-01-02T15:04:05.000Z"

// appendOptFloat appends key and v rounded to prec decimals, without trailing zeros (41.50 is 41.5); nothing if
// v is unknown (NaN).
func appendOptFloat(dst []byte, key string, v float64, prec int) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return dst
	}
	dst = append(dst, key...)
	// The shortest form of the float nearest to a decimal of prec places has at most prec places.
	p := math.Pow10(prec)
	return strconv.AppendFloat(dst, math.Round(v*p)/p, 'f', -1, 64)
}

// Record is a record decoded, of either schema version, for tests and for tools that read records back. Its JSON
// form is schema v1's (the names both versions share, rx as a timestamp).
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

// recordV2 is a schema-v2 record as written: v1's names, rx as milliseconds after ts. Its own rx field, being
// shallower, takes the key from the embedded Record's.
type recordV2 struct {
	Record
	RXAfter *int64 `json:"rx,omitempty"` // ms after ts
}

func (w recordV2) record() Record {
	r := w.Record
	if w.RXAfter != nil {
		r.RX = r.TS.Add(time.Duration(*w.RXAfter) * time.Millisecond)
	}
	return r
}

// parseRecord decodes one record as stored in the buffer: schema v2, or v1 written by an older agent.
func parseRecord(data []byte) (Record, error) {
	var head struct {
		V   int    `json:"v"`
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return Record{}, fmt.Errorf("decode record: %w", err)
	}
	switch head.V {
	case 1:
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			return Record{}, fmt.Errorf("decode record %d: %w", head.Seq, err)
		}
		return r, nil
	case SchemaVersion:
		var w recordV2
		if err := json.Unmarshal(data, &w); err != nil {
			return Record{}, fmt.Errorf("decode record %d: %w", head.Seq, err)
		}
		if w.TruckID == "" {
			// Also what a record of the short-keyed draft of v2 ("id", never released) reads as.
			return Record{}, fmt.Errorf("decode record %d: v2 without truck_id", head.Seq)
		}
		return w.record(), nil
	}
	return Record{}, fmt.Errorf("decode record %d: schema version %d, want 1 or %d", head.Seq, head.V, SchemaVersion)
}
