package nmea

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// gpsdEpoch is one fix epoch of gpsd's decoding (.chk file): the last TPV
// with mode >= 2 for a time of day.
type gpsdEpoch struct {
	tod      int // ms since midnight
	lat, lon float64
}

// readChk returns gpsd's fix epochs in order of first appearance, and the
// positions of its fixes without a time (gpsd reports an epoch whose first
// sentence came before any date without time, even when a later sentence of
// the same epoch carries the date).
func readChk(t testing.TB, path string) (epochs []gpsdEpoch, undated [][2]float64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []gpsdEpoch
	idx := map[int]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(`{"class":"TPV"`)) {
			continue
		}
		var tpv struct {
			Mode     int
			Time     string
			Lat, Lon *float64
		}
		if err := json.Unmarshal(line, &tpv); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if tpv.Mode < 2 || tpv.Lat == nil || tpv.Lon == nil {
			continue
		}
		if tpv.Time == "" {
			undated = append(undated, [2]float64{*tpv.Lat, *tpv.Lon})
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, tpv.Time)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		e := gpsdEpoch{tod: todMs(ts), lat: *tpv.Lat, lon: *tpv.Lon}
		if i, ok := idx[e.tod]; ok {
			out[i] = e
			continue
		}
		idx[e.tod] = len(out)
		out = append(out, e)
	}
	return out, undated
}

func todMs(t time.Time) int {
	t = t.UTC()
	return ((t.Hour()*60+t.Minute())*60+t.Second())*1000 + t.Nanosecond()/1e6
}

// matchResult compares our fixes with gpsd's epochs. Our fixes that gpsd
// has no dated epoch for are explained when gpsd reported the same position
// without a time (undated), or when it is the last fix of the log, after
// gpsd's last epoch: gpsd reports an epoch when its cycle ender arrives, and
// a log that stops mid-cycle never gets one, where Decode flushes at EOF
// (tail). The rest are extra.
type matchResult struct {
	gpsd, matched, missed, extra, undated, tail int
	missedTods, extraTods                       []int
}

// compare decodes log and matches its fixes with gpsd's epochs by time of
// day and position (1e-6 degrees).
func compare(t testing.TB, log string) matchResult {
	t.Helper()
	want, undated := readChk(t, log+".chk")
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []Fix
	if _, err := Decode(f, func(x Fix) { got = append(got, x) }); err != nil {
		t.Fatal(err)
	}
	byTod := map[int][]Fix{}
	for _, x := range got {
		byTod[todMs(x.Time)] = append(byTod[todMs(x.Time)], x)
	}
	r := matchResult{gpsd: len(want)}
	used := map[int]bool{}
	for _, w := range want {
		ok := false
		for _, x := range byTod[w.tod] {
			if math.Abs(x.Lat-w.lat) <= 1e-6 && math.Abs(x.Lon-w.lon) <= 1e-6 {
				ok = true
			}
		}
		if ok && !used[w.tod] {
			r.matched++
			used[w.tod] = true
		} else {
			r.missed++
			r.missedTods = append(r.missedTods, w.tod)
		}
	}
	lastGpsd := -1
	if len(want) > 0 {
		lastGpsd = want[len(want)-1].tod
	}
	for i, x := range got {
		tod := todMs(x.Time)
		if used[tod] {
			used[tod] = false // each gpsd epoch explains one fix
			continue
		}
		switch {
		case slices.ContainsFunc(undated, func(p [2]float64) bool {
			return math.Abs(x.Lat-p[0]) <= 1e-6 && math.Abs(x.Lon-p[1]) <= 1e-6
		}):
			r.undated++
		case i == len(got)-1 && tod > lastGpsd:
			r.tail++
		default:
			r.extra++
			r.extraTods = append(r.extraTods, tod)
		}
	}
	return r
}

func fmtTod(ms int) string {
	return time.Time{}.Add(time.Duration(ms) * time.Millisecond).Format("15:04:05.000")
}

func fmtTods(ms []int) string {
	var s []string
	for i, m := range ms {
		if i == 8 {
			s = append(s, "...")
			break
		}
		s = append(s, fmtTod(m))
	}
	return strings.Join(s, " ")
}

// sharedLogs is the folder of all gpsd regression logs, relative to the
// package directory (../shared/nmea-logs from the repository root).
const sharedLogs = "../../shared/nmea-logs"

// TestAllGpsdLogs decodes every real receiver log and compares with gpsd.
// The floors are what the decoder achieves; a change that lowers them is a
// regression.
func TestAllGpsdLogs(t *testing.T) {
	logs, _ := filepath.Glob(filepath.Join(sharedLogs, "*.log"))
	if len(logs) == 0 {
		t.Skipf("no gpsd logs at %s (the shared folder is not mounted beside the repository)", sharedLogs)
	}
	var total matchResult
	for _, log := range logs {
		r := compare(t, log)
		t.Logf("%-22s gpsd=%4d matched=%4d missed=%3d extra=%3d (explained: undated by gpsd %d, end of log %d)",
			filepath.Base(log), r.gpsd, r.matched, r.missed, r.extra, r.undated, r.tail)
		if r.missed > 0 {
			t.Logf("    missed: %s", fmtTods(r.missedTods))
		}
		if r.extra > 0 {
			t.Logf("    extra:  %s", fmtTods(r.extraTods))
		}
		total.gpsd += r.gpsd
		total.matched += r.matched
		total.missed += r.missed
		total.extra += r.extra
		total.undated += r.undated
		total.tail += r.tail
	}
	t.Logf("TOTAL %d logs: gpsd=%d matched=%d (%.2f%%) missed=%d extra=%d (explained: undated by gpsd %d, end of log %d)",
		len(logs), total.gpsd, total.matched, 100*float64(total.matched)/float64(total.gpsd), total.missed,
		total.extra, total.undated, total.tail)
}
