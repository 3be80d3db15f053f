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

// gpsdUndated is an epoch gpsd reported with a position but no time: gpsd
// reports an epoch whose first sentence came before any date without time,
// even when a later sentence of the same epoch carries the date. Consecutive
// undated TPVs at one position are one epoch.
type gpsdUndated struct {
	lat, lon  float64
	simulated bool // TPV status 8: the receiver runs its simulator
}

// readChk returns gpsd's dated fix epochs in order of first appearance and
// its undated ones. Every TPV line is parsed (a line that mentions TPV but
// does not decode fails the test, so no epoch is silently skipped).
func readChk(t testing.TB, path string) (epochs []gpsdEpoch, undated []gpsdUndated) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	idx := map[int]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	prevUndated := false
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"TPV"`)) {
			continue
		}
		var tpv struct {
			Class    string
			Mode     int
			Status   int
			Time     string
			Lat, Lon *float64
		}
		if err := json.Unmarshal(line, &tpv); err != nil || tpv.Class != "TPV" {
			t.Fatalf("%s: TPV line %q: %v", path, line, err)
		}
		if tpv.Mode < 2 || tpv.Lat == nil || tpv.Lon == nil {
			prevUndated = false
			continue
		}
		if tpv.Time == "" {
			u := gpsdUndated{*tpv.Lat, *tpv.Lon, tpv.Status == 8}
			if !prevUndated || undated[len(undated)-1].lat != u.lat || undated[len(undated)-1].lon != u.lon {
				undated = append(undated, u)
			}
			prevUndated = true
			continue
		}
		prevUndated = false
		ts, err := time.Parse(time.RFC3339Nano, tpv.Time)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		e := gpsdEpoch{tod: todMs(ts), lat: *tpv.Lat, lon: *tpv.Lon}
		if i, ok := idx[e.tod]; ok {
			epochs[i] = e
			continue
		}
		idx[e.tod] = len(epochs)
		epochs = append(epochs, e)
	}
	return epochs, undated
}

func todMs(t time.Time) int {
	t = t.UTC()
	return ((t.Hour()*60+t.Minute())*60+t.Second())*1000 + t.Nanosecond()/1e6
}

// matchResult compares our fixes with gpsd's epochs.
//
// gpsd's epochs are its dated ones plus its undated ones that are not the
// same position as a dated epoch (gpsd reports such an epoch twice: before
// and after the sentence that carries the date). An undated epoch is matched
// by one of our fixes at its position that no dated epoch explains.
//
// Our fixes that no gpsd epoch explains are extras; "tail" is the subset
// that is the last fix of the log after gpsd's last epoch (gpsd reports an
// epoch when its cycle ender arrives, and a log that stops mid-cycle never
// gets one, where Decode flushes at EOF). Tails count as extras against the
// floor: they are fixes gpsd does not have.
type matchResult struct {
	gpsd, matched, missed, extra, tail int
	undated, undatedMatched, simulated int // simulated: undated epochs with TPV status 8, missed by design
	missedTods, extraTods              []int
}

func near(lat1, lon1, lat2, lon2 float64) bool {
	return math.Abs(lat1-lat2) <= 1e-6 && math.Abs(lon1-lon2) <= 1e-6
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
	r := matchResult{gpsd: len(want)}
	explained := make([]bool, len(got))
	for _, w := range want {
		ok := false
		for i, x := range got {
			if !explained[i] && todMs(x.Time) == w.tod && near(x.Lat, x.Lon, w.lat, w.lon) {
				explained[i], ok = true, true
				break
			}
		}
		if ok {
			r.matched++
		} else {
			r.missed++
			r.missedTods = append(r.missedTods, w.tod)
		}
	}
	for _, u := range undated {
		if slices.ContainsFunc(want, func(w gpsdEpoch) bool { return near(w.lat, w.lon, u.lat, u.lon) }) {
			continue // the same epoch as a dated one
		}
		r.gpsd++
		r.undated++
		ok := false
		for i, x := range got {
			if !explained[i] && near(x.Lat, x.Lon, u.lat, u.lon) {
				explained[i], ok = true, true
				break
			}
		}
		switch {
		case ok:
			r.matched++
			r.undatedMatched++
		case u.simulated:
			r.missed++
			r.simulated++
		default:
			r.missed++
		}
	}
	lastGpsd := -1
	if len(want) > 0 {
		lastGpsd = want[len(want)-1].tod
	}
	for i, x := range got {
		if explained[i] {
			continue
		}
		r.extra++
		if i == len(got)-1 && todMs(x.Time) > lastGpsd {
			r.tail++
		}
		r.extraTods = append(r.extraTods, todMs(x.Time))
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

// TestAllGpsdLogs decodes every real receiver log and compares with gpsd.
// Floors (issue 5): at least 99 % of gpsd's epochs matched, extras at most
// 1 % of them, over all logs.
func TestAllGpsdLogs(t *testing.T) {
	logs, _ := filepath.Glob("testdata/*.log")
	// All 20 of gpsd's regression logs live in testdata: a fresh clone with nothing beside it runs them all.
	if len(logs) != 20 {
		t.Fatalf("testdata holds %d gpsd logs, want all 20", len(logs))
	}
	var total matchResult
	for _, log := range logs {
		r := compare(t, log)
		t.Logf("%-22s gpsd=%4d (undated %d) matched=%4d (undated %d) missed=%3d (simulated %d) extra=%3d (end of log %d)",
			filepath.Base(log), r.gpsd, r.undated, r.matched, r.undatedMatched, r.missed, r.simulated, r.extra, r.tail)
		if len(r.missedTods) > 0 {
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
		total.undatedMatched += r.undatedMatched
		total.simulated += r.simulated
		total.tail += r.tail
	}
	matched := 100 * float64(total.matched) / float64(total.gpsd)
	extra := 100 * float64(total.extra) / float64(total.gpsd)
	t.Logf("TOTAL %d logs: gpsd=%d (undated %d) matched=%d (%.2f%%) missed=%d (simulated %d) extra=%d (%.2f%%, end of log %d)",
		len(logs), total.gpsd, total.undated, total.matched, matched, total.missed, total.simulated,
		total.extra, extra, total.tail)
	if matched < 99 {
		t.Errorf("matched %.2f%% of gpsd's epochs, want >= 99%%", matched)
	}
	if extra > 1 {
		t.Errorf("extras are %.2f%% of gpsd's epochs, want <= 1%%", extra)
	}
}
