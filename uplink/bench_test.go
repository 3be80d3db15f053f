package uplink

import (
	"fmt"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/internal/benchfig"
	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// TestBenchUplinkBytesPerFix measures the bytes on the wire per fix at
// 1 Hz against kinesalite: sent plus received, measured on the connection,
// with and without the SDK's telemetry headers. Time is scaled down ten
// times (a fix every 100 ms, a linger of 1 s for "10s"): what a fix costs
// depends only on how fixes group into calls, which scaling keeps, and the
// connection stays open either way (idle timeout 30 s).
func TestBenchUplinkBytesPerFix(t *testing.T) {
	benchfig.Require(t)
	const (
		fixes = 60
		scale = 10
	)
	l := uplinktest.StartKinesalite(t, "fixes", 1)
	tests := []struct {
		name       string
		linger     time.Duration // unscaled
		sdkHeaders bool
	}{
		{name: "uplink bytes per fix at 1 Hz, linger 0", linger: 0},
		{name: "uplink bytes per fix at 1 Hz, linger 10s", linger: 10 * time.Second},
		{name: "uplink bytes per fix at 1 Hz, linger 0, SDK default headers", linger: 0, sdkHeaders: true},
		{name: "uplink bytes per fix at 1 Hz, linger 10s, SDK default headers", linger: 10 * time.Second, sdkHeaders: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(t.Context(), ClientConfig{Region: uplinktest.Region, Endpoint: l.Endpoint, sdkHeaders: tt.sdkHeaders})
			if err != nil {
				t.Fatalf("new client: %v", err)
			}
			q := newFIFOQueue()
			cfg := testConfig()
			cfg.Linger = tt.linger / scale
			u := New(cfg, c, q)
			stop := runFor(t, u)
			tick := time.NewTicker(time.Second / scale)
			defer tick.Stop()
			for i := range fixes {
				<-tick.C
				q.add(false, fixRecord(i))
			}
			q.waitDrained(t, 30*time.Second)
			stop()
			s := u.Stats()
			if !s.BytesMeasured || s.RecordsAcked != fixes {
				t.Fatalf("stats = %+v", s)
			}
			f := benchfig.Reference(tt.name, float64(s.BytesSent+s.BytesReceived)/fixes, "B")
			f.Note = fmt.Sprintf("%d fixes of %d B in %d calls: %.0f B sent + %.0f B received per fix; plain HTTP to kinesalite, time scaled 1/%d",
				fixes, len(fixRecord(0)), s.Calls, float64(s.BytesSent)/fixes, float64(s.BytesReceived)/fixes, scale)
			benchfig.Record(t, f)
		})
	}
}

// TestBenchBacklogDrain drains a day of fixes at 1 Hz (86,400 records)
// behind a proxy that throttles above one shard's 1,000 records/s, with the
// default BackfillShare of 0.5, while a live fix arrives every second.
func TestBenchBacklogDrain(t *testing.T) {
	benchfig.Require(t)
	r := drain(t, 86400, DefaultBackfillShare, time.Second)
	note := fmt.Sprintf("%d records at %.0f records/s of %.0f allowed; %d live fixes; %d calls; proxy throttled %d entries",
		r.backlog, r.rate, r.allowed, r.live, r.stats.Calls, r.proxy.RateLimited)
	f := benchfig.AtLeast("uplink backlog drain rate vs allowed share", 100*r.rate/r.allowed, "%", 90)
	f.Note = note
	benchfig.Record(t, f)
	benchfig.Record(t, benchfig.Reference("uplink backlog drain rate", r.rate, "records/s"))
	benchfig.Record(t, benchfig.AtMost("uplink live fix latency during backlog drain p50", r.p50.Seconds(), "s", 2))
	benchfig.Record(t, benchfig.AtMost("uplink live fix latency during backlog drain p99", r.p99.Seconds(), "s", 2))
}

// benchLiveFirst runs a 60 s outage of kind on the poor link (300 ms,
// 256 kbit/s up, 1 Mbit/s down) with 20,000 fixes buffered and a live fix a
// second, and records, counted from the link's return: the time to notice
// it, the live fixes' latency while the backlog drains (the first 60 s of
// the drain, which takes ~7 minutes at this rate), the drain rate and the
// duplicates.
func benchLiveFirst(t *testing.T, kind uplinktest.Outage) {
	benchfig.Require(t)
	const backlog = 20000
	r := outageRun{profile: uplinktest.Poor(), kind: kind, backlog: backlog, outage: time.Minute, watch: time.Minute}.run(t)
	hole := ""
	if kind == uplinktest.BlackHole {
		hole = ", connects hang (kernel DROP)"
		if !r.kernelHole {
			hole = ", connects accepted and silent (userspace hole)"
		}
	}
	name := "uplink after a 60 s " + kind.String() + " outage on the poor link"
	note := fmt.Sprintf("poor link (300 ms, 256/1000 kbit/s), TLS+h2 to kinesalite%s; %d fixes buffered, 1 Hz live; %v", hole, backlog, r)
	f := benchfig.AtMost(name+": link noticed", r.noticed.Seconds(), "s", 2)
	f.Note = note
	benchfig.Record(t, f)
	benchfig.Record(t, benchfig.AtMost(name+": live fix latency p99 while the backlog drains", r.p99.Seconds(), "s", 2))
	benchfig.Record(t, benchfig.Reference(name+": live fix latency p50 while the backlog drains", r.p50.Seconds(), "s"))
	d := benchfig.Reference(name+": backlog drain time (20,000 fixes, projected from the first minute)", backlog/r.drainRate, "s")
	d.Note = fmt.Sprintf("%.0f records/s over the first minute after the return; the link carries ~100/s of these records at 256 kbit/s", r.drainRate)
	benchfig.Record(t, d)
	benchfig.Record(t, benchfig.AtMost(name+": duplicates", 100*r.dupShare(), "%", 2))
	w := benchfig.Reference(name+": bytes on the link during the outage", float64(r.downBytes), "B")
	w.Note = "TLS bytes both ways at the client's sockets while the link was down; TCP/IP headers (a SYN is 60 B) not counted"
	benchfig.Record(t, w)
	if r.noticed < 0 || r.live == 0 {
		t.Errorf("nothing delivered after the return: %v", r)
	}
}

func TestBenchLiveFirstPoorRefused(t *testing.T)   { benchLiveFirst(t, uplinktest.Refused) }
func TestBenchLiveFirstPoorBlackHole(t *testing.T) { benchLiveFirst(t, uplinktest.BlackHole) }

// TestBenchBacklogDrainLTE drains 20,000 fixes buffered during a 60 s
// outage on the LTE link (60 ms, 5 Mbit/s up), a live fix a second.
func TestBenchBacklogDrainLTE(t *testing.T) {
	benchfig.Require(t)
	const backlog = 20000
	r := outageRun{profile: uplinktest.LTE(), kind: uplinktest.Refused, backlog: backlog, outage: time.Minute, watch: 90 * time.Second}.run(t)
	f := benchfig.Reference("uplink backlog drain time after a 60 s outage on the LTE link (20,000 fixes)", r.drained.Seconds(), "s")
	f.Note = fmt.Sprintf("LTE link (60 ms, 5/20 Mbit/s), TLS+h2 to kinesalite, BackfillShare 0.5 (500 records/s), fleet jitter off; %v", r)
	benchfig.Record(t, f)
	benchfig.Record(t, benchfig.AtMost("uplink after a 60 s outage on the LTE link: live fix latency p99 while the backlog drains", r.p99.Seconds(), "s", 2))
	if r.drained < 0 {
		t.Errorf("backlog not drained within 90 s: %v", r)
	}
}
