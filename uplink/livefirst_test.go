package uplink

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// outageRun is a truck on an emulated link: live fixes at 1 Hz, the link
// up, then an outage during which a backlog waits (what a long dead zone or
// a restart left buffered), then the link back while the backlog drains.
type outageRun struct {
	profile uplinktest.Profile
	kind    uplinktest.Outage
	backlog int           // records buffered, not live, when the outage begins
	outage  time.Duration // how long the link is down
	// watch is how long after the return the run goes on measuring; the
	// run ends earlier once the backlog is drained and every fix acked.
	watch time.Duration
}

// outageResult is what an outageRun measured, from the link's return.
type outageResult struct {
	noticed       time.Duration // first record Kinesis stored after the return
	live          int           // fixes recorded after the return
	p50, p99, max time.Duration // their latency, recording to ack
	unacked       int           // fixes recorded after the return, not acked by the end
	drained       time.Duration // backlog and outage fixes all acked; -1 if not by the end
	backlogAcked  int           // backlog records acked by the end
	drainRate     float64       // backlog records acked per second after the return
	stored        int           // records in the stream
	distinct      int           // distinct records in the stream
	fixes         int           // records queued in all
	stats         Stats
	kernelHole    bool
	downBytes     int64 // bytes both ways at the client's sockets while the link was down (TLS included)
}

func (r outageResult) dupShare() float64 {
	if r.distinct == 0 {
		return 0
	}
	return float64(r.stored-r.distinct) / float64(r.distinct)
}

func (r outageResult) String() string {
	drained := "not within the run"
	if r.drained >= 0 {
		drained = r.drained.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("noticed %v; %d live fixes after the return: p50 %v p99 %v max %v (%d unacked); backlog %d acked at %.0f/s, drained %s; "+
		"%d stored, %d distinct of %d, dups %.2f%%; calls %d, retries %d, errors %v; %d B on the link while down",
		r.noticed.Round(time.Millisecond), r.live, r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.max.Round(time.Millisecond), r.unacked,
		r.backlogAcked, r.drainRate, drained, r.stored, r.distinct, r.fixes, 100*r.dupShare(),
		r.stats.Calls, r.stats.Retries, r.stats.CallErrors, r.downBytes)
}

// run drives the outage and measures.
func (o outageRun) run(t *testing.T) outageResult {
	t.Helper()
	l := uplinktest.StartKinesalite(t, "fixes", 1)
	link := uplinktest.NewLink(t, l.Endpoint, uplinktest.LinkOptions{Profile: o.profile, TLS: true, Kernel: uplinktest.KernelHoleIfAble})
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDLOCAL", "AWS_SECRET_ACCESS_KEY": "local-secret", "AWS_CA_BUNDLE": link.CAFile}
	c, err := NewClient(t.Context(), ClientConfig{Region: uplinktest.Region, Endpoint: link.URL, env: fakeEnv(env, "")})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	q := newFIFOQueue()
	cfg := testConfig()
	cfg.BackfillDelay = -1 // the fleet jitter is measured elsewhere; this is the link
	u := New(cfg, c, q)
	stop := runFor(t, u)
	defer stop()

	// A fix a second, throughout.
	var (
		mu    sync.Mutex
		fixes int
	)
	feedCtx, stopFeed := context.WithCancel(t.Context())
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			mu.Lock()
			q.add(true, fixRecord(1_000_000+fixes))
			fixes++
			mu.Unlock()
			select {
			case <-feedCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { stopFeed(); <-fed }()

	time.Sleep(3 * time.Second) // the link up, a connection warm
	link.MustOutage(t, o.kind)
	m0 := link.Meter()
	recs := make([][]byte, o.backlog)
	for i := range recs {
		recs[i] = fixRecord(i)
	}
	first := q.addOld(recs...) - uint64(o.backlog) + 1
	time.Sleep(o.outage)
	m1 := link.Meter()
	link.MustOutage(t, uplinktest.NoOutage)
	back := time.Now()

	// Until the backlog and everything recorded meanwhile is acked, or the
	// watch ends.
	r := outageResult{drained: -1, kernelHole: link.NetNS != nil, downBytes: m1.Up + m1.Down - m0.Up - m0.Down}
	deadline := time.NewTimer(o.watch)
	defer deadline.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
watch:
	for {
		select {
		case <-deadline.C:
			break watch
		case <-poll.C:
			if q.pendingCount() == 0 {
				r.drained = time.Since(back)
				time.Sleep(time.Second) // the next fix's call, so the tail is measured
				break watch
			}
		}
	}
	stopFeed()
	<-fed
	time.Sleep(3 * time.Second) // the last live fix's call
	stop()

	q.mu.Lock()
	for s, at := range q.added {
		if at.Before(back) {
			continue
		}
		r.live++
		if k, ok := q.acked[s]; ok {
			r.max = max(r.max, k.Sub(at))
		} else {
			r.unacked++
		}
	}
	r.noticed = -1
	for i, at := range q.ackAll {
		if at.IsZero() || at.Before(back) {
			continue
		}
		if r.noticed < 0 || at.Sub(back) < r.noticed {
			r.noticed = at.Sub(back)
		}
		if s := uint64(i + 1); s >= first && s < first+uint64(o.backlog) {
			r.backlogAcked++
		}
	}
	r.fixes = len(q.recs)
	q.mu.Unlock()
	var after []time.Duration
	q.mu.Lock()
	for s, at := range q.added {
		if k, ok := q.acked[s]; ok && !at.Before(back) {
			after = append(after, k.Sub(at))
		}
	}
	q.mu.Unlock()
	r.p50, r.p99 = percentile(after, 50), percentile(after, 99)
	end := time.Since(back)
	if r.drained >= 0 {
		end = r.drained
	}
	r.drainRate = float64(r.backlogAcked) / end.Seconds()
	got := gotData(l.ReadAll(t, "fixes"))
	r.stored = len(got)
	r.distinct = len(slices.Compact(got))
	r.stats = u.Stats()
	t.Logf("%s, %v outage: %v (kernel hole %v; link %+v)", o.profile.Name, o.kind, r, r.kernelHole, link.Meter())
	return r
}

// TestLiveFirstOnPoorLink: after an outage of each kind on the poor link
// (300 ms, 256 kbit/s up), with a backlog waiting, the link's return is
// noticed within seconds, fixes recorded after it go first (not behind the
// backlog), every fix arrives, and duplicates stay under 2 %. The p99
// figures are TestBenchLiveFirst's.
func TestLiveFirstOnPoorLink(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesalite behind an emulated link for ~40 s")
	}
	for _, kind := range []uplinktest.Outage{uplinktest.Refused, uplinktest.BlackHole} {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			r := outageRun{profile: uplinktest.Poor(), kind: kind, backlog: 600, outage: 10 * time.Second, watch: 90 * time.Second}.run(t)
			if r.noticed < 0 || r.noticed > 5*time.Second {
				t.Errorf("link's return noticed after %v, want within a few seconds", r.noticed)
			}
			// Behind the backlog, the first fixes after the return would
			// wait for all 600 records (~20 s at 256 kbit/s).
			if r.max > 5*time.Second {
				t.Errorf("a fix recorded after the return waited %v, want well under the backlog's drain", r.max)
			}
			if r.unacked > 0 || r.drained < 0 {
				t.Errorf("%d fixes after the return unacked; drained %v", r.unacked, r.drained)
			}
			if r.distinct != r.fixes {
				t.Errorf("stream holds %d distinct records, want all %d", r.distinct, r.fixes)
			}
			if d := r.dupShare(); d > 0.02 {
				t.Errorf("duplicates %.1f%%, want <= 2%%", 100*d)
			}
		})
	}
}

// TestBlackHoleNoticed: on the poor link (300 ms), after a black hole
// (connects hang: a kernel DROP rule), the link's return is noticed within
// 1.75 s wherever it falls between fixes (three offsets). A SYN that gets
// through needs about 1 s more (TCP, TLS, the call), so what counts is how
// soon after the return the next SYN goes: a probe's connects are repeated
// every half second (probe.go). With one connect per probe, whose SYN the
// kernel resends only after 1 s, one of the three offsets took 2.2 s.
func TestBlackHoleNoticed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesalite behind an emulated link for ~20 s")
	}
	if why := uplinktest.NetNSUnavailable(); why != "" {
		t.Skipf("needs a kernel black hole: %s", why)
	}
	for _, offset := range []time.Duration{0, 300 * time.Millisecond, 600 * time.Millisecond} {
		t.Run(fmt.Sprint(offset), func(t *testing.T) {
			t.Parallel()
			r := outageRun{profile: uplinktest.Poor(), kind: uplinktest.BlackHole, backlog: 20,
				outage: 10*time.Second + offset, watch: 10 * time.Second}.run(t)
			if !r.kernelHole {
				t.Fatal("no kernel black hole")
			}
			if r.noticed < 0 || r.noticed > 1750*time.Millisecond {
				t.Errorf("link's return noticed after %v, want within 1.75 s", r.noticed)
			}
		})
	}
}
