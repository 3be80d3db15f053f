package nmea

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/internal/benchfig"
)

// TestBenchEpochClose measures "last sentence of epoch -> fix handed on":
// from the write of an epoch's last sentence into a real pty to the
// Receiver's OnFix call, with the cycle ender learned. The target, p99 <=
// 1000 us, is one pty hop, one 4 KiB read and one parse: well under the
// 100 ms an epoch lasts at 10 Hz, and far under idleFlush (300 ms), so a
// figure near that would mean the ender did not close the epoch.
func TestBenchEpochClose(t *testing.T) {
	benchfig.Require(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	link := filepath.Join(t.TempDir(), "gps0")
	m, _ := ptyAt(t, link)
	got := make(chan time.Time, 1)
	var want atomic.Int64 // unix ns of the fix awaited
	r := &Receiver{Device: link, Baud: 115200, Log: slog.New(slog.DiscardHandler), OnFix: func(f Fix) {
		if f.Time.UnixNano() == want.Load() {
			got <- time.Now()
		}
	}}
	startReceiver(t, ctx, r)
	sim := &Simulator{Seed: 5, Start: simStart, Rate: 10}
	const warm, n = 3, 400
	want.Store(sim.Fix(warm - 1).Time.UnixNano())
	for i := 0; i < warm; i++ {
		if _, err := m.Write(sim.Epoch(i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-got: // by the idle flush: the ender is learned now
	case <-ctx.Done():
		t.Fatal("no warm-up fix")
	}
	lat := make([]float64, 0, n)
	for i := warm; i < warm+n; i++ {
		ep := sim.Epoch(i)
		k := bytes.LastIndex(ep[:len(ep)-2], []byte("\n")) + 1
		want.Store(sim.Fix(i).Time.UnixNano())
		if _, err := m.Write(ep[:k]); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if _, err := m.Write(ep[k:]); err != nil {
			t.Fatal(err)
		}
		select {
		case t1 := <-got:
			lat = append(lat, float64(t1.Sub(t0).Microseconds()))
		case <-ctx.Done():
			t.Fatalf("epoch %d: no fix", i)
		}
	}
	slices.Sort(lat)
	benchfig.Record(t, benchfig.AtMost("nmea epoch close p50 (last sentence -> fix handed on)", lat[len(lat)/2], "us", 500))
	benchfig.Record(t, benchfig.AtMost("nmea epoch close p99 (last sentence -> fix handed on)", lat[len(lat)*99/100], "us", 1000))
}

// TestBenchIngest measures frame+parse+assemble on one goroutine: the real
// testdata logs, concatenated and fed again and again in 4 KiB reads.
func TestBenchIngest(t *testing.T) {
	benchfig.Require(t)
	logs, _ := filepath.Glob("testdata/*.log")
	var data []byte
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	fixes := 0
	d := NewDecoder(func(Fix) { fixes++ }, nil, nil)
	feed := func() {
		for p := data; len(p) > 0; {
			k := min(4096, len(p))
			d.Write(p[:k])
			p = p[k:]
		}
	}
	feed() // warm up: maps and buffers
	fixes = 0
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for time.Since(start) < 2*time.Second {
		feed()
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if fixes == 0 {
		t.Fatal("no fixes")
	}
	benchfig.Record(t, benchfig.Reference("nmea decode throughput", float64(fixes)/elapsed.Seconds(), "fixes/s"))
	benchfig.Record(t, benchfig.Reference("nmea allocations per fix", float64(after.Mallocs-before.Mallocs)/float64(fixes), "allocs"))
}

// BenchmarkDecoder is TestBenchIngest for `go test -bench`: one op is all
// testdata logs through one decoder, in 4 KiB writes; fixes/op and
// sentences/op say what an op holds.
func BenchmarkDecoder(b *testing.B) {
	logs, _ := filepath.Glob("testdata/*.log")
	var data []byte
	for _, l := range logs {
		p, err := os.ReadFile(l)
		if err != nil {
			b.Fatal(err)
		}
		data = append(data, p...)
	}
	var c Counters
	fixes := 0
	d := NewDecoder(func(Fix) { fixes++ }, &c, nil)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		for p := data; len(p) > 0; {
			k := min(4096, len(p))
			d.Write(p[:k])
			p = p[k:]
		}
	}
	b.ReportMetric(float64(fixes)/float64(b.N), "fixes/op")
	b.ReportMetric(float64(c.Snapshot().Sentences)/float64(b.N), "sentences/op")
}
