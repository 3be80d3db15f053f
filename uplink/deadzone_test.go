package uplink

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// TestDeadZoneDeliveryResumes drives the production client over TLS and
// HTTP/2 (offered by ALPN, as AWS does) through a black hole: for a while
// every byte vanishes both ways, nothing is refused or reset. The
// connection open when the hole begins, and those dialled during it, stay
// silent for good. Delivery must resume within seconds of the hole's end,
// and every fix must arrive.
func TestDeadZoneDeliveryResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesalite, holds a 15 s dead zone")
	}
	t.Parallel()
	l := uplinktest.StartKinesalite(t, "fixes", 1)
	p := uplinktest.NewTLSProxy(t, l.Endpoint, 1)
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDLOCAL", "AWS_SECRET_ACCESS_KEY": "local-secret", "AWS_CA_BUNDLE": p.CAFile}
	c, err := NewClient(t.Context(), ClientConfig{Region: uplinktest.Region, Endpoint: p.URL, env: fakeEnv(env, "")})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	q := newMemQueue()
	cfg := testConfig()
	cfg.MaxBackoff = time.Second
	cfg.BackfillDelay = -1 // the fleet jitter is not under test
	u := New(cfg, c, q)
	startRun(t, u)

	// A truck keeps recording through the hole: a fix every 250 ms.
	feedCtx, stopFeed := context.WithCancel(t.Context())
	fed := make(chan []string, 1)
	go func() {
		var sent []string
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			d := fmt.Sprintf("fix-%04d", i)
			q.add(d)
			sent = append(sent, d)
			select {
			case <-feedCtx.Done():
				fed <- sent
				return
			case <-tick.C:
			}
		}
	}()
	defer stopFeed()

	acked := func() uint64 { return u.Stats().RecordsAcked }
	waitFor := func(what string, d time.Duration, ok func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > d {
				t.Fatalf("%s: not within %v; uplink %+v; proxy %+v", what, d, u.Stats(), p.Counts())
			}
			time.Sleep(50 * time.Millisecond)
		}
		return time.Since(start)
	}
	waitFor("delivery before the hole", 30*time.Second, func() bool { return acked() >= 8 })
	if c := p.Counts(); c.HTTP2 == 0 {
		t.Fatalf("HTTP/2 not negotiated: %+v", c)
	}

	const hole = 15 * time.Second
	p.Set(uplinktest.Faults{BlackHole: true})
	time.Sleep(hole)
	inHole := p.Counts()
	p.Set(uplinktest.Faults{})
	before := acked()
	resumed := waitFor("delivery after the hole", 20*time.Second, func() bool { return acked() > before })
	t.Logf("delivery resumed %v after a %v hole; proxy %+v", resumed.Round(time.Millisecond), hole, inHole)
	if inHole.OpenAtHole == 0 || inHole.AcceptedInHole == 0 {
		t.Errorf("the hole swallowed %d open and %d new connections, want both (the test proves nothing)",
			inHole.OpenAtHole, inHole.AcceptedInHole)
	}
	if resumed > 12*time.Second {
		t.Errorf("delivery resumed %v after the hole, want within seconds", resumed)
	}

	stopFeed()
	want := <-fed
	q.waitDrained(t, 30*time.Second)
	got := gotData(l.ReadAll(t, "fixes"))
	if unique := slices.Compact(got); !slices.Equal(unique, want) {
		t.Errorf("stream holds %d distinct fixes, want all %d", len(unique), len(want))
	}
}
