package main

// Health rows end to end: the agent as its own process, a simulated receiver on a pseudo-terminal that goes
// silent, reports no fix and is unplugged, and real local Kinesis with a health stream read back.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/fleetedge/gps-agent/nmea"
	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// Modes of a plugRx.
const (
	rxSendFix   = iota // simulated epochs with a fix
	rxSendNoFix        // RMC status V and GGA quality 0: the receiver talks but has no fix
	rxSendNone         // nothing: a receiver that lost power, its USB serial adapter still there
)

// plugRx is a receiver on a pseudo-terminal at a stable path that can be told what to send, and unplugged and
// plugged in again (the pty closed and its link removed, then a new one).
type plugRx struct {
	t    *testing.T
	link string
	sim  nmea.Simulator

	mu      sync.Mutex
	mode    int
	master  *os.File
	closeFn func() error
	epoch   int
	cancel  context.CancelFunc
	done    chan struct{}
}

func newPlugRx(t *testing.T, link string) *plugRx {
	r := &plugRx{t: t, link: link, done: make(chan struct{}),
		sim: nmea.Simulator{Rate: 5, Start: time.Now().UTC().Truncate(time.Second), Seed: 3}}
	r.plug()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.run(ctx)
	t.Cleanup(func() {
		cancel()
		<-r.done
		r.unplug()
	})
	return r
}

func (r *plugRx) run(ctx context.Context) {
	defer close(r.done)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.mu.Lock()
		i := r.epoch
		r.epoch++
		var b []byte
		switch r.mode {
		case rxSendFix:
			b = r.sim.Epoch(i)
		case rxSendNoFix:
			b = noFixEpoch(r.sim.Fix(i).Time)
		}
		if m := r.master; m != nil && b != nil {
			m.SetWriteDeadline(time.Now().Add(time.Second)) // never block on a reader that went away
			m.Write(b)
		}
		r.mu.Unlock()
	}
}

func (r *plugRx) set(mode int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mode = mode
}

func (r *plugRx) plug() {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, _, closeFn, err := nmea.OpenPTY(r.link)
	if err != nil {
		r.t.Fatalf("plug: %v", err)
	}
	r.master, r.closeFn = m, closeFn
}

func (r *plugRx) unplug() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closeFn != nil {
		r.closeFn()
	}
	r.master, r.closeFn = nil, nil
}

// noFixEpoch is what a receiver without a fix sends: checksummed sentences, RMC void, GGA quality 0.
func noFixEpoch(t time.Time) []byte {
	tod := t.Format("150405") + ".00"
	var b strings.Builder
	for _, s := range []string{
		"GNRMC," + tod + ",V,,,,,,," + t.Format("020106") + ",,,N",
		"GNGGA," + tod + ",,,,,0,00,99.99,,,,,,",
	} {
		var sum byte
		for i := range len(s) {
			sum ^= s[i]
		}
		fmt.Fprintf(&b, "$%s*%02X\r\n", s, sum)
	}
	return []byte(b.String())
}

// createStream creates stream on the local Kinesis and waits until it is ACTIVE.
func createStream(t *testing.T, k *uplinktest.Local, stream string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := k.Client(t)
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatalf("create stream %s: %v", stream, err)
	}
	if err := kinesis.NewStreamExistsWaiter(c, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
	}).Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, 50*time.Second); err != nil {
		t.Fatalf("stream %s not active: %v", stream, err)
	}
}

// readHealth reads every health row the stream holds, each checked against docs/health.schema.json and its
// partition key.
func readHealth(t *testing.T, k *uplinktest.Local, stream string) []healthRow {
	t.Helper()
	var rows []healthRow
	for _, g := range k.ReadAll(t, stream) {
		checkHealthSchema(t, g.Data)
		var r healthRow
		if err := json.Unmarshal(g.Data, &r); err != nil {
			t.Fatalf("health row %s: %v", g.Data, err)
		}
		if g.PartitionKey != r.TruckID {
			t.Errorf("row %d: partition key %q, truck_id %q", r.Seq, g.PartitionKey, r.TruckID)
		}
		rows = append(rows, r)
	}
	return rows
}

// waitHealth polls the health stream until a row after the first `after` rows says state, and returns all rows.
func waitHealth(t *testing.T, a *agentProc, k *uplinktest.Local, stream string, after int, state string) []healthRow {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-a.done:
			t.Fatalf("agent exited (%v) while waiting for a %s row", a.err, state)
		default:
		}
		rows := readHealth(t, k, stream)
		for _, r := range rows[min(after, len(rows)):] {
			if r.Receiver == state {
				return rows
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s row in 60 s; rows: %s", state, rowsSummary(rows))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func rowsSummary(rows []healthRow) string {
	var s []string
	for _, r := range rows {
		s = append(s, fmt.Sprintf("%d:%s:%s", r.Seq, r.Reason, r.Receiver))
	}
	return strings.Join(s, " ")
}

// TestHealthRowsEndToEnd: the receiver sends fixes, goes silent, talks without a fix, is unplugged and plugged in
// again; the health stream says so, row by row, while positions keep going to their own stream.
func TestHealthRowsEndToEnd(t *testing.T) {
	const stream, hstream = "positions", "health"
	k := uplinktest.StartKinesisMock(t, stream, 1)
	createStream(t, k, hstream)
	dev := filepath.Join(t.TempDir(), "gps0")
	rx := newPlugRx(t, dev)
	path := writeConfig(t, dev, k.Endpoint, stream)
	b, _ := os.ReadFile(path)
	writeFile(t, path, strings.Replace(string(b), "[uplink]", "health_stream = \"health\"\nhealth_interval = \"4s\"\n[uplink]", 1))
	agent := startAgent(t, "run", "--config", path)

	rows := waitHealth(t, agent, k, hstream, 0, rxOK)
	rx.set(rxSendNone)
	rows = waitHealth(t, agent, k, hstream, len(rows), rxSilent)
	rx.set(rxSendNoFix)
	rows = waitHealth(t, agent, k, hstream, len(rows), rxNoFix)
	rx.unplug()
	rows = waitHealth(t, agent, k, hstream, len(rows), rxUnavailable)
	rx.set(rxSendFix)
	rx.plug()
	rows = waitHealth(t, agent, k, hstream, len(rows), rxOK)

	// `gps-agent check` puts one real row, marked as a check, with the running daemon's numbers.
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	if _, out, _ := runCLI(t, nil, "status", "--config", path); !strings.Contains(out, "health") ||
		!strings.Contains(out, "rows sent (last") {
		t.Errorf("status shows no health line:\n%s", out)
	}
	_, out, verdicts := checkOutput(t, path)
	wantVerdicts(t, out, verdicts, map[string]string{"health": pass})
	t.Logf("check:\n%s", out)
	var checkRow *healthRow
	for _, r := range readHealth(t, k, hstream) {
		if r.Check {
			checkRow = &r
		}
	}
	if checkRow == nil || checkRow.Reason != healthCheck || checkRow.Boot == rows[0].Boot || checkRow.Receiver != rxOK ||
		checkRow.Fixes == 0 || checkRow.TSSrc != "gnss" {
		t.Errorf("check row %+v; check said:\n%s", checkRow, out)
	}
	agent.stop(t)

	// Without the daemon, to a health stream that does not exist: FAIL, saying so.
	b, _ = os.ReadFile(path)
	writeFile(t, path, strings.Replace(string(b), `health_stream = "health"`, `health_stream = "no-such-health"`, 1))
	_, out, verdicts = checkOutput(t, path)
	wantVerdicts(t, out, verdicts, map[string]string{"health": fail})
	if !strings.Contains(out, "health stream no-such-health not found") {
		t.Errorf("check without the stream:\n%s", out)
	}

	// The states in order, each change once, interval rows between.
	var states []string
	var lastChange time.Time
	for i, r := range rows {
		if i == 0 && (r.Reason != healthStart || r.Seq != 1) {
			t.Errorf("first row %+v, want the start row, seq 1", r)
		}
		if i > 0 && (r.Seq <= rows[i-1].Seq || r.Boot != rows[0].Boot) {
			t.Errorf("row %d: seq %d boot %s after seq %d boot %s", i, r.Seq, r.Boot, rows[i-1].Seq, rows[i-1].Boot)
		}
		if len(states) == 0 || states[len(states)-1] != r.Receiver {
			states = append(states, r.Receiver)
			if i > 0 && r.Reason != healthChange {
				t.Errorf("row %d: the state changed to %s in a %s row", r.Seq, r.Receiver, r.Reason)
			}
		}
		ts, _ := time.Parse(time.RFC3339, r.TS)
		if r.Reason == healthChange {
			if !lastChange.IsZero() && ts.Sub(lastChange) < changeEvery-time.Second {
				t.Errorf("row %d: a change row %s after the last", r.Seq, ts.Sub(lastChange))
			}
			lastChange = ts
		}
		// ts goes on with GNSS time while the receiver is silent or has no fix: carried on the monotonic clock.
		if r.TSSrc != "gnss" || r.GNSSTS == nil {
			t.Errorf("row %d: ts_src %s gnss_ts %v, want gnss after the first fix", r.Seq, r.TSSrc, r.GNSSTS)
			continue
		}
		g, _ := time.Parse(time.RFC3339, *r.GNSSTS)
		if r.Receiver == rxSilent && ts.Sub(g) < silentAfter-time.Second {
			t.Errorf("row %d (silent): ts %s only %s after the last fix %s", r.Seq, r.TS, ts.Sub(g), *r.GNSSTS)
		}
		if r.Receiver == rxUnavailable && !strings.Contains(r.ReceiverError, "gps0") {
			t.Errorf("row %d: unavailable, error %q", r.Seq, r.ReceiverError)
		}
		if r.ClockOffsetS == nil || *r.ClockOffsetS > 2 || *r.ClockOffsetS < -2 {
			t.Errorf("row %d: clock_offset_s %v", r.Seq, r.ClockOffsetS)
		}
	}
	if want := []string{rxOK, rxSilent, rxNoFix, rxUnavailable, rxOK}; strings.Join(states, " ") != strings.Join(want, " ") {
		t.Errorf("states %v, want %v; rows %s", states, want, rowsSummary(rows))
	}
	var intervals int
	for _, r := range rows {
		if r.Reason == healthInterval {
			intervals++
		}
	}
	last := rows[len(rows)-1]
	if intervals == 0 || last.Fixes == 0 || last.BytesSent == 0 || last.Sentences == 0 || last.AgentVersion == "" {
		t.Errorf("%d interval rows; last row %+v", intervals, last)
	}
	// The positions went on in their own stream.
	if pos := waitFor(t, nil, k, stream, 30*time.Second, "positions", func(a *arrived) bool { return len(a.bySeq) > 10 }); len(pos.bySeq) == 0 {
		t.Error("no positions")
	}
	t.Logf("%d rows: %s", len(rows), rowsSummary(rows))
}
