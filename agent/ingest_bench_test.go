package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/internal/benchfig"
	"github.com/fleetedge/gps-agent/nmea"
)

// ingest runs the whole chain before the buffer over one capture: frame, parse, assemble, filter, encode.
// The filter keeps every fix (the logs are mostly of standing receivers, which the default filter thins to one
// a minute), so that every fix pays for every stage. It returns the fixes through the chain.
func ingest(log []byte, enc *recordEncoder, buf *[]byte) int {
	fl := newFilter(FilterConfig{MinPeriod: Duration{0}, Heartbeat: Duration{time.Hour}})
	n := 0
	nmea.Decode(bytes.NewReader(log), func(f nmea.Fix) {
		for _, k := range fl.keep(f, f.Time) { // a capture: received at its own pace, the gateway clock agreeing
			n++
			*buf = enc.encode((*buf)[:0], uint64(n), k.Fix, k.rx)
		}
	})
	return n
}

func realLogs(t testing.TB) [][]byte {
	paths, _ := filepath.Glob("../nmea/testdata/*.log")
	var logs [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, b)
	}
	if len(logs) == 0 {
		t.Fatal("no logs in ../nmea/testdata")
	}
	return logs
}

// TestBenchIngest: fixes per second through frame, parse, assemble, filter and encode, on one core, from real
// receiver logs replayed in memory; and allocations per fix.
func TestBenchIngest(t *testing.T) {
	benchfig.Require(t)
	logs := realLogs(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	enc := newRecordEncoder("TRK-0042")
	var buf []byte
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	fixes := 0
	for time.Since(start) < 3*time.Second {
		for _, l := range logs {
			fixes += ingest(l, enc, &buf)
		}
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms1)
	if fixes == 0 {
		t.Fatal("no fixes")
	}
	benchfig.Record(t, benchfig.AtLeast("ingest: frame+parse+assemble+filter+encode, one core", float64(fixes)/elapsed.Seconds(), "fixes/s", 50_000))
	benchfig.Record(t, benchfig.Reference("ingest: allocations per fix", float64(ms1.Mallocs-ms0.Mallocs)/float64(fixes), "allocs"))
}
