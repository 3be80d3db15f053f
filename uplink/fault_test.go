package uplink

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// TestFaultsDeliverEverything drives the real client through a fault proxy
// in front of kinesalite: every record must arrive at least once, every ack
// must be for a stored record, and duplicates may only come from replies
// the proxy dropped after the records were stored.
func TestFaultsDeliverEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesalite")
	}
	t.Parallel()
	l := uplinktest.StartKinesalite(t, "fixes", 1)
	p := uplinktest.NewProxy(t, l.Endpoint, 7)
	p.Set(uplinktest.Faults{FailRecords: 0.3, Status500: 0.1, Throttle: 0.1, DropReply: 0.1})
	q := newMemQueue()
	cfg := testConfig()
	cfg.MaxBackoff = 50 * time.Millisecond
	u := New(cfg, localClient(t, &uplinktest.Local{Endpoint: p.URL}), q)
	startRun(t, u)

	// At least 400 records, and more (in fifties, up to 2,000) until the proxy has injected every kind of fault:
	// how many calls 400 records take depends on timing, and a kind that never came would test nothing.
	injectedAll := func() bool {
		c := p.Counts()
		return c.FailedRecords > 0 && c.Status500 > 0 && c.Throttled > 0 && c.DroppedReplies > 0
	}
	var want []string
	for i := 0; i < 400 || (!injectedAll() && i < 2000); i++ {
		d := fmt.Sprintf("fix-%04d", i)
		want = append(want, d)
		q.add(d)
		if i%50 == 0 {
			q.waitDrained(t, 30*time.Second)
		}
	}
	q.waitDrained(t, 60*time.Second)

	got := gotData(l.ReadAll(t, "fixes"))
	unique := slices.Compact(slices.Clone(got))
	if !slices.Equal(unique, want) {
		t.Errorf("stream holds %d distinct records, want %d", len(unique), len(want))
	}
	c := p.Counts()
	if dups := len(got) - len(unique); dups > c.DroppedRecords {
		t.Errorf("%d duplicates, but only %d stored records had their reply dropped", dups, c.DroppedRecords)
	}
	for seq, n := range q.acked {
		if n != 1 {
			t.Errorf("seq %d acked %d times", seq, n)
		}
	}
	s := u.Stats()
	t.Logf("proxy %+v", c)
	t.Logf("uplink %+v", s)
	if c.FailedRecords == 0 || c.Status500 == 0 || c.Throttled == 0 || c.DroppedReplies == 0 {
		t.Fatalf("proxy injected too little to test anything: %+v", c)
	}
	if got := s.FailedRecords["ProvisionedThroughputExceededException"]; got != uint64(c.FailedRecords) {
		t.Errorf("uplink counted %d failed records, proxy failed %d", got, c.FailedRecords)
	}
	if got := s.CallErrors["http 500"] + s.CallErrors["InternalFailure"]; got != uint64(c.Status500) {
		t.Errorf("uplink counted %d 500s (%v), proxy sent %d", got, s.CallErrors, c.Status500)
	}
	if s.Throttles < uint64(c.Throttled+c.FailedRecords) {
		t.Errorf("throttles = %d, want >= %d", s.Throttles, c.Throttled+c.FailedRecords)
	}
}

func TestBlackoutKeepsRecordsQueued(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesalite")
	}
	t.Parallel()
	l := uplinktest.StartKinesalite(t, "fixes", 1)
	p := uplinktest.NewProxy(t, l.Endpoint, 1)
	p.Set(uplinktest.Faults{Blackout: true})
	q := newMemQueue()
	cfg := testConfig()
	cfg.MaxBackoff = 100 * time.Millisecond
	u := New(cfg, localClient(t, &uplinktest.Local{Endpoint: p.URL}), q)
	startRun(t, u)

	q.add("a", "b")
	deadline := time.Now().Add(10 * time.Second)
	for p.Counts().Blackouts < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no retries during blackout: %+v", p.Counts())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := q.pendingCount(); n != 2 {
		t.Fatalf("pending during blackout = %d, want 2", n)
	}
	p.Set(uplinktest.Faults{})
	q.waitDrained(t, 10*time.Second)
	if got, want := gotData(l.ReadAll(t, "fixes")), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("stream = %q, want %q", got, want)
	}
	if s := u.Stats(); s.CallErrors["connection"] == 0 {
		t.Errorf("blackout not counted as connection errors: %v", s.CallErrors)
	}
}
