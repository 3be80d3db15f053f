package uplink

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// TestMain gives NewClient dummy credentials from the environment and no
// shared files, once for the whole binary, so that tests using it can run
// in parallel (t.Setenv forbids that).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "uplink-test")
	if err != nil {
		panic(err)
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDLOCAL", "AWS_SECRET_ACCESS_KEY": "local-secret", "AWS_SESSION_TOKEN": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_PROFILE": "",
	} {
		os.Setenv(k, v)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// localClient builds the production client (NewClient) against a local
// stand-in.
func localClient(t *testing.T, l *uplinktest.Local) API {
	t.Helper()
	c, err := NewClient(t.Context(), ClientConfig{Region: uplinktest.Region, Endpoint: l.Endpoint})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

func startRun(t *testing.T, u *Uplink) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return 10 s after cancel")
		}
	})
}

func gotData(got []uplinktest.Got) []string {
	var out []string
	for _, g := range got {
		out = append(out, string(g.Data))
	}
	slices.Sort(out)
	return out
}

func TestKinesisMockDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesis-mock (~7 s)")
	}
	t.Parallel()
	l := uplinktest.StartKinesisMock(t, "fixes", 1)
	q := newMemQueue()
	cfg := testConfig()
	cfg.Log = quietLog()
	u := New(cfg, localClient(t, l), q)
	startRun(t, u)

	var want []string
	for i := range 5 { // one at a time, as fixes arrive
		d := fmt.Sprintf("fix-%03d", i)
		want = append(want, d)
		q.add(d)
		q.waitDrained(t, 20*time.Second)
	}
	var burst []string
	for i := 5; i < 300; i++ {
		burst = append(burst, fmt.Sprintf("fix-%03d", i))
	}
	want = append(want, burst...)
	q.add(burst...)
	q.waitDrained(t, 30*time.Second)

	got := l.ReadAll(t, "fixes")
	if g := gotData(got); !slices.Equal(g, want) {
		t.Errorf("stream holds %d records, want %d: %q", len(g), len(want), g)
	}
	for _, g := range got {
		if g.PartitionKey != "truck-7" || g.SequenceNumber == "" {
			t.Errorf("record %q: key %q, seq %q", g.Data, g.PartitionKey, g.SequenceNumber)
		}
	}
	// Acked exactly once each, and only what is stored.
	if len(q.acked) != len(want) {
		t.Errorf("acked %d records, want %d", len(q.acked), len(want))
	}
	for seq, n := range q.acked {
		if n != 1 {
			t.Errorf("seq %d acked %d times", seq, n)
		}
	}
	s := u.Stats()
	if s.RecordsAcked != uint64(len(want)) || len(s.FailedRecords) != 0 || len(s.CallErrors) != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestKinesisMockOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesis-mock twice (~15 s)")
	}
	t.Parallel()
	l := uplinktest.StartKinesisMock(t, "fixes", 1)
	q := newMemQueue()
	cfg := testConfig()
	cfg.MaxBackoff = time.Second
	u := New(cfg, localClient(t, l), q)
	startRun(t, u)

	q.add("before")
	q.waitDrained(t, 20*time.Second)

	l.Stop()
	q.add("during-1", "during-2")
	// Wait until the uplink has seen the outage.
	deadline := time.Now().Add(10 * time.Second)
	for u.Stats().Calls < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("uplink made no call during the outage: %+v", u.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if q.pendingCount() != 2 {
		t.Fatalf("pending during outage = %d, want 2", q.pendingCount())
	}
	l.Start() // the stream comes back empty
	q.add("after")
	q.waitDrained(t, 30*time.Second)

	want := []string{"after", "during-1", "during-2"}
	if got := gotData(l.ReadAll(t, "fixes")); !slices.Equal(got, want) {
		t.Errorf("stream after outage = %q, want %q", got, want)
	}
	s := u.Stats()
	if len(s.CallErrors) == 0 || s.Retries == 0 || s.LastError == "" {
		t.Errorf("outage not counted: %+v", s)
	}
}
