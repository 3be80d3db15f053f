package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleetedge/gps-agent/buffer"
)

// fixesCmd prints what the buffer holds: from the running daemon, or from a database file.
func fixesCmd(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	path := configFlag(fs)
	db := dbFlag(fs)
	format := fs.String("format", "table", "table, json, csv, geojson or gpx")
	since := fs.String("since", "", "only fixes at or after this time: RFC 3339 (2026-11-25T14:00:00Z) or an age (90m)")
	until := fs.String("until", "", "only fixes at or before this time: RFC 3339 or an age")
	limit := fs.Int("limit", 0, "at most this many fixes, oldest first (0: all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *limit < 0 {
		fs.Usage()
		return errUsage
	}
	now := time.Now()
	req := controlRequest{Op: "fixes", Limit: *limit}
	var err error
	if req.Since, err = parseWhen(*since, now); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if req.Until, err = parseWhen(*until, now); err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	out := bufio.NewWriter(stdout)
	fw, err := newFixWriter(*format, out)
	if err != nil {
		fmt.Fprintf(stderr, "gps-agent fixes: %v\n", err)
		fs.Usage()
		return errUsage
	}
	var bad int
	emit := func(r buffer.Record) error {
		rec, err := parseRecord(r.Data)
		if err != nil {
			bad++
			return nil
		}
		return fw.fix(rec, r.Data)
	}
	if err := readFixes(ctx, *path, *db, req, emit); err != nil {
		return err
	}
	if err := fw.end(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "gps-agent fixes: %d buffered records are not fixes of schema v1 or v2 and were skipped\n", bad)
	}
	return out.Flush()
}

// readFixes passes the selected fixes to fn, from the database file db if set, else from the daemon of the config,
// else from the database the config names.
func readFixes(ctx context.Context, cfgPath, db string, req controlRequest, fn func(buffer.Record) error) error {
	fromDB := func(path, socket string, socketErr error) error {
		b, err := openBufferInPlace(path, socket, socketErr)
		if err != nil {
			return err
		}
		defer b.Close()
		_, err = eachFix(ctx, b, req, fn)
		return err
	}
	if db != "" {
		return fromDB(db, "", nil)
	}
	cfg, err := fieldConfig(cfgPath)
	if err != nil {
		return err
	}
	err = daemonFixes(ctx, cfg.StatusSocket, req, fn)
	if err == nil {
		return nil
	}
	if !errors.Is(err, errNoDaemon) {
		return err // part of the output may be written: falling back would repeat it
	}
	return fromDB(filepath.Join(cfg.Buffer.Dir, bufferFile), cfg.StatusSocket, err)
}

// parseWhen reads a time as RFC 3339 or as an age before now ("90m", "2h"); "" is the zero time (no bound).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: use RFC 3339 (2026-11-25T14:00:00Z) or an age (90m, 2h)", s)
}

// fixWriter writes fixes in one format; end closes the document.
type fixWriter interface {
	fix(r Record, raw []byte) error
	end() error
}

func newFixWriter(format string, w io.Writer) (fixWriter, error) {
	switch format {
	case "table":
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "seq\tfix time (UTC)\tlat\tlon\tkm/h\tcourse\talt m\tfix\tsats\thdop\treceived (UTC)\t")
		return &tableWriter{tw: tw}, nil
	case "json":
		return &jsonWriter{w: w}, nil
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write([]string{"truck_id", "seq", "ts", "lat", "lon", "speed_kmh", "course_deg", "alt_m", "fix", "sats", "hdop", "rx"})
		return &csvWriter{w: cw}, nil
	case "geojson":
		return &geojsonWriter{w: w}, nil
	case "gpx":
		return &gpxWriter{w: w}, nil
	}
	return nil, fmt.Errorf("--format %q: use table, json, csv, geojson or gpx", format)
}

const tableTime = "2006-01-02 15:04:05"

type tableWriter struct{ tw *tabwriter.Writer }

func (t *tableWriter) fix(r Record, _ []byte) error {
	_, err := fmt.Fprintf(t.tw, "%d\t%s\t%.6f\t%.6f\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n", r.Seq, r.TS.UTC().Format(tableTime),
		r.Lat, r.Lon, optFloat(r.SpeedKmh, 1), optFloat(r.CourseDeg, 1), optFloat(r.AltM, 1), r.Fix, optInt(r.Sats),
		optFloat(r.HDOP, 2), timeOrDash(r.RX, tableTime))
	return err
}

func (t *tableWriter) end() error { return t.tw.Flush() }

// jsonWriter writes a JSON array of the records as stored (schema v2, or v1 from an older agent), one per line.
type jsonWriter struct {
	w io.Writer
	n int
}

func (j *jsonWriter) fix(_ Record, raw []byte) error {
	sep := ",\n"
	if j.n == 0 {
		sep = "[\n"
	}
	j.n++
	// The record as Kinesis receives it: the schema is the contract, so it is passed on, not re-encoded.
	_, err := fmt.Fprintf(j.w, "%s%s", sep, raw)
	return err
}

func (j *jsonWriter) end() error {
	if j.n == 0 {
		_, err := io.WriteString(j.w, "[]\n")
		return err
	}
	_, err := io.WriteString(j.w, "\n]\n")
	return err
}

type csvWriter struct{ w *csv.Writer }

func (c *csvWriter) fix(r Record, _ []byte) error {
	return c.w.Write([]string{r.TruckID, strconv.FormatUint(r.Seq, 10), r.TS.UTC().Format(timeLayout),
		strconv.FormatFloat(r.Lat, 'f', 7, 64), strconv.FormatFloat(r.Lon, 'f', 7, 64),
		optFloatEmpty(r.SpeedKmh, 2), optFloatEmpty(r.CourseDeg, 1), optFloatEmpty(r.AltM, 1), strconv.Itoa(r.Fix),
		optIntEmpty(r.Sats), optFloatEmpty(r.HDOP, 2), timeOrEmpty(r.RX)})
}

func (c *csvWriter) end() error { c.w.Flush(); return c.w.Error() }

// geojsonWriter writes an RFC 7946 FeatureCollection of Point features, [lon, lat(, alt)], the record's fields as
// properties: QGIS and most web maps open it as it is.
type geojsonWriter struct {
	w io.Writer
	n int
}

type geoFeature struct {
	Type     string      `json:"type"`
	Geometry geoPoint    `json:"geometry"`
	Props    geoFixProps `json:"properties"`
}

type geoPoint struct {
	Type        string    `json:"type"`
	Coordinates []float64 `json:"coordinates"`
}

type geoFixProps struct {
	TruckID   string    `json:"truck_id"`
	Seq       uint64    `json:"seq"`
	TS        string    `json:"ts"`
	SpeedKmh  *float64  `json:"speed_kmh,omitempty"`
	CourseDeg *float64  `json:"course_deg,omitempty"`
	AltM      *float64  `json:"alt_m,omitempty"`
	Fix       int       `json:"fix"`
	Sats      *int      `json:"sats,omitempty"`
	HDOP      *float64  `json:"hdop,omitempty"`
	RX        time.Time `json:"rx,omitzero"`
}

func (g *geojsonWriter) fix(r Record, _ []byte) error {
	coords := []float64{r.Lon, r.Lat}
	if r.AltM != nil {
		coords = append(coords, *r.AltM)
	}
	b, err := json.Marshal(geoFeature{Type: "Feature", Geometry: geoPoint{Type: "Point", Coordinates: coords},
		Props: geoFixProps{TruckID: r.TruckID, Seq: r.Seq, TS: r.TS.UTC().Format(timeLayout), SpeedKmh: r.SpeedKmh,
			CourseDeg: r.CourseDeg, AltM: r.AltM, Fix: r.Fix, Sats: r.Sats, HDOP: r.HDOP, RX: r.RX.UTC()}})
	if err != nil {
		return err
	}
	sep := ",\n"
	if g.n == 0 {
		sep = `{"type":"FeatureCollection","features":[` + "\n"
	}
	g.n++
	_, err = fmt.Fprintf(g.w, "%s%s", sep, b)
	return err
}

func (g *geojsonWriter) end() error {
	if g.n == 0 {
		_, err := io.WriteString(g.w, `{"type":"FeatureCollection","features":[]}`+"\n")
		return err
	}
	_, err := io.WriteString(g.w, "\n]}\n")
	return err
}

// gpxWriter writes GPX 1.1: one track per truck, one track point per fix, elements in the order the schema's
// wptType sequence requires (ele, time, name, desc, sat, hdop). Speed and course have no GPX 1.1 element; they go
// in desc.
type gpxWriter struct {
	w     io.Writer
	truck string
	open  bool // a <trk> is open
	begun bool
}

func (g *gpxWriter) begin() error {
	g.begun = true
	_, err := io.WriteString(g.w, xml.Header+`<gpx version="1.1" creator="gps-agent `+xmlEscape(version)+
		`" xmlns="http://www.topografix.com/GPX/1/1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`+
		` xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd">`+"\n")
	return err
}

func (g *gpxWriter) fix(r Record, _ []byte) error {
	if !g.begun {
		if err := g.begin(); err != nil {
			return err
		}
	}
	if !g.open || r.TruckID != g.truck {
		if g.open {
			io.WriteString(g.w, "</trkseg></trk>\n")
		}
		fmt.Fprintf(g.w, "<trk><name>%s</name><trkseg>\n", xmlEscape(r.TruckID))
		g.open, g.truck = true, r.TruckID
	}
	fmt.Fprintf(g.w, `<trkpt lat="%.7f" lon="%.7f">`, r.Lat, r.Lon)
	if r.AltM != nil {
		fmt.Fprintf(g.w, "<ele>%.1f</ele>", *r.AltM)
	}
	fmt.Fprintf(g.w, "<time>%s</time><name>seq %d</name>", r.TS.UTC().Format(timeLayout), r.Seq)
	if r.SpeedKmh != nil || r.CourseDeg != nil {
		fmt.Fprintf(g.w, "<desc>%s km/h, course %s</desc>", optFloat(r.SpeedKmh, 1), optFloat(r.CourseDeg, 1))
	}
	if r.Fix == 2 {
		io.WriteString(g.w, "<fix>dgps</fix>")
	}
	if r.Sats != nil && *r.Sats >= 0 {
		fmt.Fprintf(g.w, "<sat>%d</sat>", *r.Sats)
	}
	if r.HDOP != nil && *r.HDOP >= 0 {
		fmt.Fprintf(g.w, "<hdop>%.2f</hdop>", *r.HDOP)
	}
	_, err := io.WriteString(g.w, "</trkpt>\n")
	return err
}

func (g *gpxWriter) end() error {
	if !g.begun {
		if err := g.begin(); err != nil {
			return err
		}
	}
	if g.open {
		io.WriteString(g.w, "</trkseg></trk>\n")
	}
	_, err := io.WriteString(g.w, "</gpx>\n")
	return err
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func optFloat(p *float64, prec int) string {
	if p == nil {
		return "?"
	}
	return strconv.FormatFloat(*p, 'f', prec, 64)
}

func optFloatEmpty(p *float64, prec int) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', prec, 64)
}

func optIntEmpty(p *int) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(*p)
}

func timeOrDash(t time.Time, layout string) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(layout)
}

func timeOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}
