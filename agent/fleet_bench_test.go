package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/internal/benchfig"
)

// TestBenchFleet: 30 real agents on one shard, all offline for the same 60 s and all back at once, default
// settings, each with 20 minutes of 1 Hz fixes buffered (an hour in `make fleet`, which also runs 100 trucks on
// 4 shards: GPS_AGENT_FLEET). Every figure of issue 15 beside its target; with GPS_AGENT_FLEET_SVG set, the
// drain is drawn there (docs/fleet-drain.svg in `make fleet`).
func TestBenchFleet(t *testing.T) {
	benchfig.Require(t)
	spec := fleetSpecFromEnv(t, fleetSpec{trucks: 30, shards: 1, backlog: 1200, outage: time.Minute, limit: 4 * time.Minute})
	res := runFleet(t, spec)
	t.Log(res)
	for _, s := range res.seconds {
		t.Logf("%s %+6.1fs accepted %4d throttled %4d", s.Shard, s.Second.Sub(res.back).Seconds(), s.Accepted, s.Throttled)
	}
	if dir := os.Getenv("GPS_AGENT_FLEET_TRACE"); dir != "" {
		writeFleetTrace(t, dir, res)
	}
	if path := os.Getenv("GPS_AGENT_FLEET_SVG"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatalf("svg: %v", err)
		}
		if err := drawFleet(f, res); err != nil {
			t.Fatalf("svg: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Fatalf("svg: %v", err)
		}
	}
	name := fmt.Sprintf("fleet of %d agents on %d shard(s) after a shared %v outage (%d fixes buffered each)", spec.trucks, spec.shards, spec.outage, spec.backlog)
	f := benchfig.AtMost(name+": live fix latency p99 over the fleet", res.liveP99.Seconds(), "s", 2)
	f.Note = res.String()
	benchfig.Record(t, f)
	benchfig.Record(t, benchfig.AtMost(name+": live fix latency p99 of the worst truck", res.worstTruckP99.Seconds(), "s", 2))
	for _, s := range res.shards {
		n := name + ", " + s.id
		benchfig.Record(t, benchfig.AtLeast(n+": shard busy while the backlogs drain", 100*s.busy, "%", 80))
		benchfig.Record(t, benchfig.AtMost(n+": records throttled", 100*s.throttled, "%", 10))
		limit := (30*time.Second + s.ideal*3/2).Seconds()
		d := benchfig.AtMost(n+": last backlog stored, from the return", s.drained.Seconds(), "s", limit)
		d.Note = fmt.Sprintf("backfill delay 30 s + 1.5 x ideal %.1f s (%d records at 1,000/s)", s.ideal.Seconds(), s.backlog)
		benchfig.Record(t, d)
	}
	benchfig.Record(t, benchfig.AtMost(name+": duplicates", 100*float64(res.dups)/float64(max(1, res.fixes)), "%", 2))
	benchfig.Record(t, benchfig.AtMost(name+": fixes missing", float64(res.missing), "fixes", 0))
	c := benchfig.Reference(name+": agents' CPU per truck per second of the run", 1000*res.agentCPU.Seconds()/float64(spec.trucks)/res.wall.Seconds(), "ms/s")
	c.Note = fmt.Sprintf("what the machine itself costs: %.0f s of agent CPU in %.0f s wall for %d agents on %d cores; load average %s",
		res.agentCPU.Seconds(), res.wall.Seconds(), spec.trucks, runtime.NumCPU(), res.load)
	benchfig.Record(t, c)
}

// writeFleetTrace writes what a fleet run's calls and agents did into dir, to study a drain: calls.csv (one line a
// PutRecords call the shard limiter judged: truck, seconds since the return, reply time, records, throttled) and
// each agent's log.
func writeFleetTrace(t *testing.T, dir string, res fleetResult) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("trace: %v", err)
	}
	var b strings.Builder
	b.WriteString("truck,at,took,records,throttled\n")
	for _, c := range res.calls {
		fmt.Fprintf(&b, "%s,%.3f,%.3f,%d,%d\n", c.PartitionKey, c.At.Sub(res.back).Seconds(), c.Took.Seconds(), c.Records, c.Throttled)
	}
	if err := os.WriteFile(filepath.Join(dir, "calls.csv"), []byte(b.String()), 0o644); err != nil {
		t.Fatalf("trace: %v", err)
	}
	for i, l := range res.logs {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("agent-%03d.log", i)), []byte(l), 0o644); err != nil {
			t.Fatalf("trace: %v", err)
		}
	}
}
