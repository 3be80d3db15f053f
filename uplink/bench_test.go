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
