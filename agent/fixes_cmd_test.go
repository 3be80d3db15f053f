package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/buffer"
	"github.com/fleetedge/gps-agent/nmea"
)

// fieldT0 is the GNSS time of the first fix the tests buffer.
var fieldT0 = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

// writeTestBuffer buffers n fixes one second apart from fieldT0 (every third with unknown speed, course, altitude,
// satellites and HDOP) in a new database, closes it, and returns its path.
func writeTestBuffer(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), bufferFile)
	b, err := buffer.Open(path, buffer.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	enc := newRecordEncoder(`TRK-<&">7`) // characters XML and CSV must escape
	for i := range n {
		f := nmea.Fix{Time: fieldT0.Add(time.Duration(i) * time.Second), Lat: 53.5 + float64(i)*1e-4, Lon: -9.99 + float64(i)*1e-4,
			SpeedKmh: 30, CourseDeg: 152.3, AltM: 12.4, Quality: 1 + i%2, Sats: 9, HDOP: 0.9}
		if i%3 == 2 {
			f.SpeedKmh, f.CourseDeg, f.AltM, f.Sats, f.HDOP = math.NaN(), math.NaN(), math.NaN(), -1, math.NaN()
		}
		if _, err := b.Append(f.Time, func(seq uint64) ([]byte, error) { return enc.encode(nil, seq, f, f.Time.Add(time.Second)), nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFixesFormats(t *testing.T) {
	db := writeTestBuffer(t, 10)
	empty := writeTestBuffer(t, 0)
	tests := []struct {
		name   string
		db     string
		args   []string
		format string
		want   []uint64 // seqs, in order
	}{
		{name: "all", db: db, want: seqRange(1, 10)},
		{name: "limit", db: db, args: []string{"--limit", "3"}, want: seqRange(1, 3)},
		{name: "since and until", db: db, args: []string{"--since", "2026-11-25T14:00:04Z", "--until", "2026-11-25T14:00:06Z"}, want: seqRange(5, 7)},
		{name: "since after the last", db: db, args: []string{"--since", "2026-11-26T00:00:00Z"}},
		{name: "empty buffer", db: empty},
	}
	for _, tc := range tests {
		for _, format := range []string{"table", "json", "csv", "geojson", "gpx"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				args := append([]string{"fixes", "--db", tc.db, "--format", format}, tc.args...)
				code, out, errOut := runCLI(t, nil, args...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errOut)
				}
				got := parseFixesOutput(t, format, out)
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Fatalf("seqs %v, want %v; output:\n%s", got, tc.want, out)
				}
			})
		}
	}
}

func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// parseFixesOutput parses one format strictly and returns the seqs it holds.
func parseFixesOutput(t *testing.T, format, out string) []uint64 {
	t.Helper()
	var seqs []uint64
	switch format {
	case "table":
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if !strings.Contains(lines[0], "seq") || !strings.Contains(lines[0], "fix time") {
			t.Fatalf("no table header: %q", lines[0])
		}
		for _, l := range lines[1:] {
			var s uint64
			if _, err := fmt.Sscan(strings.Fields(l)[0], &s); err != nil {
				t.Fatalf("row %q: %v", l, err)
			}
			seqs = append(seqs, s)
		}
	case "json":
		var raws []json.RawMessage
		if err := json.Unmarshal([]byte(out), &raws); err != nil {
			t.Fatalf("not a JSON array: %v", err)
		}
		for _, raw := range raws {
			r, err := decodeRecord(raw) // strict: the schema-v2 record as sent, nothing added
			if err != nil {
				t.Fatalf("record %s: %v", raw, err)
			}
			seqs = append(seqs, r.Seq)
		}
	case "csv":
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if rows[0][0] != "truck_id" || rows[0][1] != "seq" {
			t.Fatalf("header %v", rows[0])
		}
		for _, r := range rows[1:] {
			if r[0] != `TRK-<&">7` {
				t.Fatalf("truck_id %q", r[0])
			}
			var s uint64
			fmt.Sscan(r[1], &s)
			seqs = append(seqs, s)
		}
	case "geojson":
		seqs = parseGeoJSON(t, out)
	case "gpx":
		seqs = parseGPX(t, out)
	}
	return seqs
}

// parseGeoJSON checks RFC 7946 structure: a FeatureCollection of Point features with [lon, lat(, alt)] in range.
func parseGeoJSON(t *testing.T, out string) []uint64 {
	t.Helper()
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			Type     string `json:"type"`
			Geometry struct {
				Type        string    `json:"type"`
				Coordinates []float64 `json:"coordinates"`
			} `json:"geometry"`
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		t.Fatalf("not GeoJSON: %v", err)
	}
	if fc.Type != "FeatureCollection" || fc.Features == nil {
		t.Fatalf("type %q, features %v", fc.Type, fc.Features)
	}
	var seqs []uint64
	for _, f := range fc.Features {
		c := f.Geometry.Coordinates
		if f.Type != "Feature" || f.Geometry.Type != "Point" || len(c) < 2 || len(c) > 3 {
			t.Fatalf("feature %+v", f)
		}
		if c[0] < -180 || c[0] > 180 || c[1] < -90 || c[1] > 90 || c[1] < 50 { // [lon, lat]: our latitudes are 53.5
			t.Fatalf("coordinates %v are not [lon, lat]", c)
		}
		seqs = append(seqs, uint64(f.Properties["seq"].(float64)))
	}
	return seqs
}

// gpxDoc is GPX 1.1 as far as we write it. Element order inside trkpt is checked separately.
type gpxDoc struct {
	XMLName xml.Name `xml:"http://www.topografix.com/GPX/1/1 gpx"`
	Version string   `xml:"version,attr"`
	Creator string   `xml:"creator,attr"`
	Trk     []struct {
		Name   string `xml:"name"`
		Trkseg []struct {
			Trkpt []struct {
				Lat  float64   `xml:"lat,attr"`
				Lon  float64   `xml:"lon,attr"`
				Ele  *float64  `xml:"ele"`
				Time time.Time `xml:"time"`
				Name string    `xml:"name"`
				Sat  *int      `xml:"sat"`
				HDOP *float64  `xml:"hdop"`
			} `xml:"trkpt"`
		} `xml:"trkseg"`
	} `xml:"trk"`
}

// gpxWptOrder is the sequence of GPX 1.1's wptType: children of trkpt must come in this order.
var gpxWptOrder = []string{"ele", "time", "magvar", "geoidheight", "name", "cmt", "desc", "src", "link", "sym", "type",
	"fix", "sat", "hdop", "vdop", "pdop", "ageofdgpsdata", "dgpsid", "extensions"}

func parseGPX(t *testing.T, out string) []uint64 {
	t.Helper()
	var doc gpxDoc
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not GPX: %v", err)
	}
	if doc.Version != "1.1" || doc.Creator == "" {
		t.Fatalf("gpx version %q creator %q", doc.Version, doc.Creator)
	}
	checkGPXOrder(t, out)
	validateGPXSchema(t, out)
	var seqs []uint64
	for _, trk := range doc.Trk {
		if trk.Name != `TRK-<&">7` {
			t.Fatalf("track name %q", trk.Name)
		}
		for _, seg := range trk.Trkseg {
			for _, p := range seg.Trkpt {
				if p.Lat < 50 || p.Lon > 0 || p.Time.Before(fieldT0) {
					t.Fatalf("trkpt %+v", p)
				}
				var s uint64
				fmt.Sscanf(p.Name, "seq %d", &s)
				seqs = append(seqs, s)
			}
		}
	}
	return seqs
}

// checkGPXOrder walks the tokens and checks every element's children against the schema's sequences.
func checkGPXOrder(t *testing.T, out string) {
	t.Helper()
	children := map[string][]string{
		"gpx":    {"metadata", "wpt", "rte", "trk", "extensions"},
		"trk":    {"name", "cmt", "desc", "src", "link", "number", "type", "extensions", "trkseg"},
		"trkseg": {"trkpt", "extensions"},
		"trkpt":  gpxWptOrder,
	}
	dec := xml.NewDecoder(strings.NewReader(out))
	type frame struct {
		name string
		last int
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if el.Name.Space != "http://www.topografix.com/GPX/1/1" {
				t.Fatalf("element %s outside the GPX namespace", el.Name.Local)
			}
			if n := len(stack); n > 0 {
				parent := &stack[n-1]
				if allowed, ok := children[parent.name]; ok {
					i := indexOf(allowed, el.Name.Local)
					if i < 0 || i < parent.last {
						t.Fatalf("<%s> in <%s> is not allowed there (order %v)", el.Name.Local, parent.name, allowed)
					}
					parent.last = i
				}
			}
			stack = append(stack, frame{name: el.Name.Local})
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// validateGPXSchema validates against the official GPX 1.1 XSD with xmllint when both are there: the schema
// file (agent/testdata/gpx.xsd, from https://www.topografix.com/GPX/1/1/gpx.xsd) and libxml2-utils.
func validateGPXSchema(t *testing.T, out string) {
	t.Helper()
	xsd, err := filepath.Abs(filepath.Join("testdata", "gpx.xsd"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(xsd); err != nil {
		t.Logf("no %s: GPX checked structurally only", xsd)
		return
	}
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		t.Logf("no xmllint (Debian libxml2-utils): GPX checked structurally only")
		return
	}
	cmd := exec.Command(xmllint, "--noout", "--schema", xsd, "-")
	cmd.Stdin = strings.NewReader(out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("GPX does not validate against GPX 1.1: %v\n%s", err, stderr.String())
	}
}

func TestFixesUsage(t *testing.T) {
	db := writeTestBuffer(t, 1)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "unknown format", args: []string{"--format", "kml"}, want: `--format "kml"`},
		{name: "bad since", args: []string{"--since", "yesterday"}, want: `--since: "yesterday"`},
		{name: "missing db", args: []string{"--db", filepath.Join(t.TempDir(), "none.db")}, want: "none.db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"fixes", "--db", db}, tc.args...)
			code, _, errOut := runCLI(t, nil, args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q, want it to contain %q", code, errOut, tc.want)
			}
		})
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 25, 16, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Time
		bad      bool
	}{
		{name: "empty is no bound", in: ""},
		{name: "rfc3339", in: "2026-11-25T14:00:00+01:00", want: time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)},
		{name: "age", in: "90m", want: now.Add(-90 * time.Minute)},
		{name: "negative age", in: "-5m", bad: true},
		{name: "words", in: "yesterday", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWhen(tc.in, now)
			if (err != nil) != tc.bad || !got.Equal(tc.want) {
				t.Fatalf("parseWhen(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}
