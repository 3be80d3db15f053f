package main

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// kill sends SIGKILL, as a power cut would end the agent, and waits for it to exit.
func (a *agentProc) kill(t *testing.T) {
	t.Helper()
	a.cmd.Process.Kill()
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not die of SIGKILL")
	}
}

// waitLog waits until the agent has logged s, or fails if it exits first.
func (a *agentProc) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(a.stderr.String(), s) {
		select {
		case <-a.done:
			t.Fatalf("agent exited (%v) before logging %q:\n%s", a.err, s, a.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent did not log %q in 30 s:\n%s", s, a.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The agent is killed with SIGKILL at random moments, 20 times, while a 10 Hz receiver records and the stream is
// unreachable; each time it is restarted. Then the stream comes up. Every restart must succeed, no seq may be
// reused for a different fix, each kill may lose at most the fixes of one commit interval, and every other fix
// must arrive.
func TestKill9Restarts(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about a minute")
	}
	const (
		stream         = "kill9"
		kills          = 20
		commitInterval = 500 * time.Millisecond
	)
	k := uplinktest.StartKinesisMock(t, stream, 1)
	proxy := uplinktest.NewProxy(t, k.Endpoint, 9)
	proxy.Set(uplinktest.Faults{Blackout: true}) // a dead zone: every call fails
	f := newFeeder(t, 10)
	cfg := writeConfig(t, f.path, proxy.URL, stream)
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg, strings.Replace(string(data), `commit_interval = "200ms"`, `commit_interval = "500ms"`, 1))

	var windows lossWindows
	rng := rand.New(rand.NewPCG(7, 9))
	agent := startAgent(t, "run", "--config", cfg)
	agent.waitLog(t, "receiver open")
	f.start()
	for i := range kills {
		time.Sleep(time.Duration(300+rng.IntN(2700)) * time.Millisecond) // a random moment
		select {
		case <-agent.done:
			t.Fatalf("agent exited by itself before kill %d: %v\n%s", i+1, agent.err, agent.stderr.String())
		default:
		}
		killed := time.Now()
		agent.kill(t)
		f.pause()
		agent = startAgent(t, "run", "--config", cfg)
		agent.waitLog(t, "receiver open") // every restart succeeds, whatever state the kill left
		windows.add(killed.Add(-commitInterval-150*time.Millisecond), time.Now())
		f.start()
	}
	time.Sleep(2 * time.Second)
	written := f.pause()

	proxy.Set(uplinktest.Faults{}) // the stream comes up
	period := 100 * time.Millisecond
	got, lost := awaitEveryFixOutside(t, windows, agent, k, stream, f, period, written, 120*time.Second)
	agent.stop(t)

	perKill := float64(lost) / kills
	t.Logf("%d epochs written, %d fixes arrived, %d lost in %d kills (%.1f per kill; one commit interval is %d)",
		written, len(got.bySeq), lost, kills, perKill, int(commitInterval/period))
	// The restart after an unclean stop says which seqs it skipped, so downstream tells a restart from a loss.
	if logs := agent.stderr.String(); !strings.Contains(logs, "unclean stop: skipping seqs") {
		t.Errorf("the last restart did not log its seq gap:\n%s", logs)
	}
}
