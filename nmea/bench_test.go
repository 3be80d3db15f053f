package nmea

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/internal/benchfig"
)

// TestBenchEpochClose measures "last sentence of epoch -> fix handed on" at
// the receiver's real pace: the simulator's u-blox-like cycle (RMC, GGA, two
// GSA, GSV in parts: it ends on untimed sentences) written sentence by
// sentence into a real pty at the line rate, at 1 Hz (9600 baud) and 10 Hz
// (115200 baud), from the write of an epoch's last sentence to the
// Receiver's OnFix call, once the cycle ender is learned. The target, p99 <=
// 1000 us, is one pty hop, one read and one parse: far under idleFlush
// (300 ms), so a figure near that means the ender did not close the epoch
// (at 1 Hz it did not, before the ender was learned across the idle flush).
// Each figure is split, in its note and in two references, into the pty
// hop (the write until the Receiver's Read returns the sentence: kernel and
// scheduler, no code of ours) and the decoder's part (the Read until the
// fix is handed on): on a shared machine the hop is what moves.
// About 35 s: 23 epochs at 1 Hz, 125 at 10 Hz.
func TestBenchEpochClose(t *testing.T) {
	benchfig.Require(t)
	for _, tc := range []paceCase{
		{"1 Hz", 1, 9600, 3, 23, 0},
		{"10 Hz", 10, 115200, 5, 125, 0},
	} {
		run := tc.run(t)
		us, hop := sortedMicros(run.lat), sortedMicros(run.hop)
		decode := make([]time.Duration, len(run.lat))
		for i := range run.lat {
			decode[i] = run.lat[i] - run.hop[i]
		}
		dec := sortedMicros(decode)
		t.Logf("%s: %d epochs, slowest five %.0f us; of which the pty hop %.0f us", tc.name, len(us), us[max(0, len(us)-5):], hop[max(0, len(hop)-5):])
		what := fmt.Sprintf("nmea epoch close at %s, %d baud, pty", tc.name, tc.baud)
		p50 := benchfig.AtMost(what+" p50 (last sentence -> fix handed on)", us[len(us)/2], "us", 500)
		p50.Note = fmt.Sprintf("of which the pty hop (last sentence written -> the Receiver's Read returns it: kernel and scheduler) p50 %.0f us, the decoder (Read returns -> fix handed on) p50 %.0f us", hop[len(hop)/2], dec[len(dec)/2])
		benchfig.Record(t, p50)
		p99 := benchfig.AtMost(what+" p99 (last sentence -> fix handed on)", us[len(us)*99/100], "us", 1000)
		p99.Note = fmt.Sprintf("of which the pty hop p99 %.0f us, the decoder p99 %.0f us", hop[len(hop)*99/100], dec[len(dec)*99/100])
		benchfig.Record(t, p99)
		benchfig.Record(t, benchfig.Reference(what+": of which the pty hop, p50 (last sentence written -> Read returns it)", hop[len(hop)/2], "us"))
		benchfig.Record(t, benchfig.Reference(what+": of which the decoder, p50 (Read returns -> fix handed on)", dec[len(dec)/2], "us"))
	}
}

// sortedMicros returns ds in microseconds, ascending.
func sortedMicros(ds []time.Duration) []float64 {
	us := make([]float64, len(ds))
	for i, d := range ds {
		us[i] = float64(d.Nanoseconds()) / 1e3
	}
	slices.Sort(us)
	return us
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
