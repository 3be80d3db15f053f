package main

// A fleet on one shard: real agent processes, each with its own simulated receiver (1 Hz) and a backlog written
// into its buffer beforehand, behind the proxy's shard-limited Kinesis (uplinktest.ShardLimits: 1,000 records/s
// and 1 MiB/s per shard), all offline for the same outage and all back at once, default uplink settings.

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/buffer"
	"github.com/fleetedge/gps-agent/nmea"
	"github.com/fleetedge/gps-agent/uplink"
	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// fleetSpec sizes a fleet run.
type fleetSpec struct {
	trucks  int
	shards  int
	backlog int           // fixes at 1 Hz each truck holds from before the outage
	outage  time.Duration // all offline, then all back at once
	limit   time.Duration // how long after the return the backlogs may take before the test gives up
}

// fleetTruck is one truck of a fleet run.
type fleetTruck struct {
	id    string
	dir   string // config, buffer and status socket
	shard string
	f     *feeder
	a     *agentProc
}

// fleetArrival is a record the proxy saw stored.
type fleetArrival struct {
	truck int
	seq   uint64
	live  bool
	lat   time.Duration // live fixes: from the epoch's last byte at the receiver to stored
	wrote time.Time     // live fixes: when the receiver wrote the epoch's last byte
	at    time.Duration // since the return
}

// fleetResult is what a fleet run measured, counted from the link's return.
type fleetResult struct {
	spec          fleetSpec
	liveP99       time.Duration // over the fleet's live fixes while the backlogs drained
	worstTruckP99 time.Duration
	liveN         int
	shards        []shardResult
	dups, fixes   int
	missing       int
	agentCPU      time.Duration // user+system of every agent process over the run
	wall          time.Duration // the run, from the first agent's start to the last's stop
	load          string        // /proc/loadavg at the end
	seconds       []uplinktest.ShardSecond
	calls         []uplinktest.ShardCall
	logs          []string // each agent's log, by truck
	back          time.Time
	liveBySecond  map[int][]time.Duration // live latencies by second since the return
}

// shardResult is one shard's drain.
type shardResult struct {
	id                 string
	trucks             int
	backlog            int           // backlog records of its trucks
	firstBackfill      time.Duration // first backlog record stored, since the return
	drained            time.Duration // last backlog record stored, since the return
	accepted, throttle int           // records over [firstBackfill, drained]
	busy               float64       // accepted / (limit x span)
	throttled          float64       // throttled / attempted
	ideal              time.Duration // backlog / limit
}

func (r fleetResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d trucks on %d shard(s), %d fixes of backlog each, %v outage: live p99 %.2fs (worst truck %.2fs, %d fixes), duplicates %d of %d, missing %d; agents used %.1f s CPU in %.0f s; load %s",
		r.spec.trucks, r.spec.shards, r.spec.backlog, r.spec.outage, r.liveP99.Seconds(), r.worstTruckP99.Seconds(), r.liveN,
		r.dups, r.fixes, r.missing, r.agentCPU.Seconds(), r.wall.Seconds(), r.load)
	for _, s := range r.shards {
		fmt.Fprintf(&b, "\n  %s: %d trucks, %d backlog records; backfill from %.1fs, drained at %.1fs (ideal %.1fs); busy %.0f%%, throttled %.1f%% (%d of %d)",
			s.id, s.trucks, s.backlog, s.firstBackfill.Seconds(), s.drained.Seconds(), s.ideal.Seconds(), 100*s.busy, 100*s.throttled,
			s.throttle, s.accepted+s.throttle)
	}
	return b.String()
}

// fleetConfig is a truck's config: default uplink settings; the filter keeps every fix, so that every epoch can be
// checked.
func fleetConfig(t *testing.T, dir, id, device, endpoint, stream string) string {
	t.Helper()
	path := filepath.Join(dir, "config.toml")
	writeFile(t, path, fmt.Sprintf(`truck_id = %q
log_level = "info"
status_socket = %q
[receiver]
device = %q
[filter]
min_period = "0s"
min_distance_m = 0
stop_speed_kmh = 0
[buffer]
dir = %q
[kinesis]
stream = %q
region = "us-east-1"
endpoint = %q
`, id, filepath.Join(dir, "agent.sock"), device, filepath.Join(dir, "state"), stream, endpoint))
	return path
}

// writeBacklog writes n fixes at 1 Hz ending at end into the truck's buffer, as the agent would have recorded them,
// with seqs 1..n: faster than recording them, and the same bytes.
func writeBacklog(t *testing.T, dir, id string, n int, end time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o750); err != nil {
		t.Fatal(err)
	}
	b, err := buffer.Open(filepath.Join(dir, "state", bufferFile), buffer.DefaultOptions())
	if err != nil {
		t.Fatalf("open buffer: %v", err)
	}
	enc := newRecordEncoder(id)
	for i := range n {
		at := end.Add(time.Duration(i-n) * time.Second)
		f := nmea.Fix{Time: at, Lat: 52.5 + float64(i)*1e-5, Lon: 13.4, SpeedKmh: 50, CourseDeg: 90, AltM: 40, Quality: 1, Sats: 9, HDOP: 0.9}
		if _, err := b.Append(at, func(seq uint64) ([]byte, error) { return enc.encode(nil, seq, f, at), nil }); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatalf("close buffer: %v", err)
	}
}

// runFleet runs the fleet of spec and returns what it measured; it fails t only when the run itself cannot go
// on (an agent exits, the backlogs do not drain within spec.limit).
func runFleet(t *testing.T, spec fleetSpec) fleetResult {
	const stream = "fleet"
	res := fleetResult{spec: spec, liveBySecond: map[int][]time.Duration{}}
	k := uplinktest.StartKinesalite(t, stream, spec.shards)
	proxy := uplinktest.NewProxy(t, k.Endpoint, 1)
	limits := &uplinktest.ShardLimits{}
	proxy.Set(uplinktest.Faults{Blackout: true, Shards: limits})

	trucks := make([]*fleetTruck, spec.trucks)
	byID := map[string]int{}
	start := time.Now()
	for i := range trucks {
		id := fmt.Sprintf("TRK-%03d", i)
		shard, err := proxy.ShardOf(stream, id)
		if err != nil || shard == "" {
			t.Fatalf("shard of %s: %q, %v", id, shard, err)
		}
		dir := t.TempDir()
		f := newFeeder(t, 1)
		writeBacklog(t, dir, id, spec.backlog, f.sim.Start)
		trucks[i] = &fleetTruck{id: id, dir: dir, shard: shard, f: f}
		byID[id] = i
	}
	var (
		mu       sync.Mutex
		arrivals []fleetArrival
		back     time.Time
	)
	proxy.Watch(func(s uplinktest.Stored) {
		i, ok := byID[s.PartitionKey]
		if !ok {
			return
		}
		r, err := parseRecord(s.Data)
		if err != nil {
			return
		}
		tr := trucks[i]
		a := fleetArrival{truck: i, seq: r.Seq, live: r.Seq > uint64(spec.backlog)}
		if a.live {
			epoch := int(math.Round(r.TS.Sub(tr.f.sim.Start).Seconds()))
			tr.f.mu.Lock()
			if epoch >= 0 && epoch < len(tr.f.at) {
				a.wrote = tr.f.at[epoch]
				a.lat = s.At.Sub(a.wrote)
			}
			tr.f.mu.Unlock()
		}
		mu.Lock()
		a.at = s.At.Sub(back)
		arrivals = append(arrivals, a)
		mu.Unlock()
	})
	for _, tr := range trucks {
		tr.a = startAgent(t, "run", "--config", fleetConfig(t, tr.dir, tr.id, tr.f.path, proxy.URL, stream))
		tr.f.start()
	}
	time.Sleep(spec.outage) // the outage: every agent records and probes a dead link
	mu.Lock()
	back = time.Now()
	mu.Unlock()
	proxy.Set(uplinktest.Faults{Shards: limits})

	// Wait for every backlog record; an agent that exits ends the run.
	total := spec.trucks * spec.backlog
	for {
		mu.Lock()
		seen := map[[2]uint64]bool{}
		for _, a := range arrivals {
			if !a.live {
				seen[[2]uint64{uint64(a.truck), a.seq}] = true
			}
		}
		mu.Unlock()
		if len(seen) == total {
			break
		}
		if time.Since(back) > spec.limit {
			mu.Lock()
			n := len(arrivals)
			mu.Unlock()
			t.Fatalf("after %v, %d of %d backlog records stored (%d records told); proxy %+v", spec.limit, len(seen), total, n, proxy.Counts())
		}
		for _, tr := range trucks {
			select {
			case <-tr.a.done:
				t.Fatalf("agent %s exited (%v):\n%s", tr.id, tr.a.err, tr.a.stderr.String())
			default:
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The last live fixes, then stop.
	written := make([]int, len(trucks))
	time.Sleep(3 * time.Second)
	for i, tr := range trucks {
		written[i] = tr.f.pause()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := map[[2]uint64]bool{}
		for _, a := range arrivals {
			got[[2]uint64{uint64(a.truck), a.seq}] = true
		}
		mu.Unlock()
		want := 0
		for _, w := range written {
			want += spec.backlog + w
		}
		if len(got) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var wg sync.WaitGroup
	for _, tr := range trucks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr.a.stop(t)
		}()
	}
	wg.Wait()
	res.wall = time.Since(start)
	for _, tr := range trucks {
		if ps := tr.a.cmd.ProcessState; ps != nil {
			res.agentCPU += ps.UserTime() + ps.SystemTime()
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.load = strings.TrimSpace(string(b))
	}

	// Every fix, read back from the stream; duplicates are records stored more than once.
	stored := map[[2]uint64]int{}
	for _, g := range k.ReadAll(t, stream) {
		i, ok := byID[g.PartitionKey]
		if !ok {
			continue
		}
		r, err := parseRecord(g.Data)
		if err != nil {
			t.Errorf("record of %s: %v", g.PartitionKey, err)
			continue
		}
		stored[[2]uint64{uint64(i), r.Seq}]++
	}
	for i := range trucks {
		for s := 1; s <= spec.backlog+written[i]-1; s++ { // the last epoch written may not have been recorded
			n := stored[[2]uint64{uint64(i), uint64(s)}]
			if n == 0 {
				res.missing++
			}
			if n > 1 {
				res.dups += n - 1
			}
		}
	}
	res.fixes = len(stored)
	res.back = back
	res.seconds = proxy.ShardSeconds()
	res.calls = proxy.ShardCalls()
	for _, tr := range trucks {
		res.logs = append(res.logs, tr.a.stderr.String())
	}
	res.measure(trucks, arrivals)
	return res
}

// measure fills in the drain's figures from the arrivals and the proxy's shard seconds.
func (res *fleetResult) measure(trucks []*fleetTruck, arrivals []fleetArrival) {
	spec := res.spec
	byShard := map[string]*shardResult{}
	var order []string
	for _, tr := range trucks {
		s, ok := byShard[tr.shard]
		if !ok {
			s = &shardResult{id: tr.shard, firstBackfill: -1}
			byShard[tr.shard] = s
			order = append(order, tr.shard)
		}
		s.trucks++
		s.backlog += spec.backlog
	}
	slices.Sort(order)
	var lastDrain time.Duration
	for _, a := range arrivals {
		if a.live {
			continue
		}
		s := byShard[trucks[a.truck].shard]
		if s.firstBackfill < 0 || a.at < s.firstBackfill {
			s.firstBackfill = a.at
		}
		s.drained = max(s.drained, a.at)
		lastDrain = max(lastDrain, a.at)
	}
	perTruck := make([][]time.Duration, len(trucks))
	var all []time.Duration
	for _, a := range arrivals {
		// Live fixes recorded after the return: those of the outage arrive as old as the outage.
		if !a.live || a.lat <= 0 || a.wrote.Before(res.back) || a.at > lastDrain {
			continue
		}
		perTruck[a.truck] = append(perTruck[a.truck], a.lat)
		all = append(all, a.lat)
		sec := int(a.at / time.Second)
		res.liveBySecond[sec] = append(res.liveBySecond[sec], a.lat)
	}
	p99 := func(d []time.Duration) time.Duration {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[(len(d)-1)*99/100]
	}
	res.liveN = len(all)
	res.liveP99 = p99(all)
	for _, d := range perTruck {
		res.worstTruckP99 = max(res.worstTruckP99, p99(d))
	}
	// A shard's use, by whole seconds within [first backfill, drained]: the edges are partial seconds.
	for _, id := range order {
		s := byShard[id]
		from := res.back.Add(s.firstBackfill).Truncate(time.Second).Add(time.Second)
		to := res.back.Add(s.drained).Truncate(time.Second)
		n := 0
		for _, sec := range res.seconds {
			if sec.Shard == id && !sec.Second.Before(from) && sec.Second.Before(to) {
				s.accepted += sec.Accepted
				s.throttle += sec.Throttled
			}
		}
		n = int(to.Sub(from) / time.Second)
		s.busy = float64(s.accepted) / float64(max(1, n)*uplinktest.ShardRecordsPerSecond)
		s.throttled = float64(s.throttle) / float64(max(1, s.accepted+s.throttle))
		s.ideal = time.Duration(float64(s.backlog) / uplinktest.ShardRecordsPerSecond * float64(time.Second))
		res.shards = append(res.shards, *s)
	}
}

// check asserts what must hold while a fleet's backlogs drain (issue 15); busyMin is the least share of a shard's
// limit it must take.
func (res fleetResult) check(t *testing.T, busyMin float64) {
	t.Helper()
	if res.missing > 0 {
		t.Errorf("%d fixes never arrived", res.missing)
	}
	if limit := res.fixes * 2 / 100; res.dups > limit {
		t.Errorf("%d duplicates, more than 2 %% (%d) of %d fixes", res.dups, limit, res.fixes)
	}
	if res.liveP99 > 2*time.Second || res.worstTruckP99 > 2*time.Second {
		t.Errorf("live fixes p99 %v over the fleet, %v for the worst truck: want within 2 s", res.liveP99, res.worstTruckP99)
	}
	if res.liveN == 0 {
		t.Errorf("no live fix arrived while the backlogs drained")
	}
	for _, s := range res.shards {
		if s.busy < busyMin {
			t.Errorf("%s: %.0f %% busy while its backlogs drained, want >= %.0f %%", s.id, 100*s.busy, 100*busyMin)
		}
		if s.throttled > 0.10 {
			t.Errorf("%s: %.1f %% of records throttled, want <= 10 %%", s.id, 100*s.throttled)
		}
		if limit := uplink.DefaultBackfillDelay + s.ideal*3/2; s.drained > limit {
			t.Errorf("%s: last backlog stored %.1f s after the return, want within %.1f s (backfill delay + 1.5 x %.1f s)",
				s.id, s.drained.Seconds(), limit.Seconds(), s.ideal.Seconds())
		}
	}
}

// TestFleetDrain: a small fleet of real agents on one shard, back from the same outage at once (about 90 s).
//
// The shard's use is asserted at >= 70 % here (84 % measured), not the 80 % TestBenchFleet asserts for 30 trucks: with the default
// backfill delay, ten trucks start their backfills spread over 30 s, and the shard is not full until two of them
// run at their share.
func TestFleetDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 10 agents for about 90 s")
	}
	res := runFleet(t, fleetSpec{trucks: 10, shards: 1, backlog: 3600, outage: 15 * time.Second, limit: 2 * time.Minute})
	t.Log(res)
	res.check(t, 0.7)
}

// fleetSpecFromEnv reads GPS_AGENT_FLEET, "trucks x shards x backlog[ x outage]" (e.g. 100x4x3600x60s, what
// `make fleet` runs), or returns def.
func fleetSpecFromEnv(t *testing.T, def fleetSpec) fleetSpec {
	v := os.Getenv("GPS_AGENT_FLEET")
	if v == "" {
		return def
	}
	parts := strings.Split(v, "x")
	if len(parts) < 3 {
		t.Fatalf("GPS_AGENT_FLEET=%q: want trucks x shards x backlog[ x outage]", v)
	}
	spec := def
	var err error
	num := func(s string) int {
		n, e := strconv.Atoi(s)
		if e != nil {
			err = e
		}
		return n
	}
	spec.trucks, spec.shards, spec.backlog = num(parts[0]), num(parts[1]), num(parts[2])
	if len(parts) > 3 {
		spec.outage, err = time.ParseDuration(parts[3])
	}
	if err != nil {
		t.Fatalf("GPS_AGENT_FLEET=%q: %v", v, err)
	}
	spec.limit = uplink.DefaultBackfillDelay + 3*time.Duration(float64(spec.trucks*spec.backlog)/float64(spec.shards)/uplinktest.ShardRecordsPerSecond*float64(time.Second)) + time.Minute
	return spec
}
