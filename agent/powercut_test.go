//go:build linux && (amd64 || arm64)

package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/internal/cutfs"
	"github.com/fleetedge/gps-agent/internal/cutfs/cutfstest"
	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// The agent's buffer lives on the power-cut filesystem; the power is cut at random moments (SIGKILL and a cut at
// the same instant, a seeded share of the unsynced pages and directories reaching the disk, one page torn), and
// the filesystem is mounted again and the agent restarted each time. Half the cuts after the first are armed
// at one of the next writes or syncs, so they land inside a commit. The first cut comes within 300 ms of the
// first start on an empty directory; half the cuts come while recording offline at 10 Hz with every fix kept,
// the rest while the backlog drains. Every restart must succeed, nothing may be moved aside, no seq may be reused
// for another fix, each cut may lose at most the fixes of one commit interval (plus the fsync's own time), and
// every other fix must arrive. GPS_AGENT_CUTS sets the number of cuts (default 6; make cuts runs 100).
func TestPowerCutRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about a minute")
	}
	testExecutable(t)
	cuts := 6
	if v := os.Getenv("GPS_AGENT_CUTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			t.Fatalf("GPS_AGENT_CUTS=%q", v)
		}
		cuts = n
	}
	const (
		stream         = "powercut"
		commitInterval = 500 * time.Millisecond
		// The cut's share of an fsync: a commit that began before the cut may still be writing.
		fsyncSlack = 300 * time.Millisecond
	)
	fsys := cutfstest.New(t)
	state := filepath.Join(fsys.Dir, "state")
	k := uplinktest.StartKinesalite(t, stream, 1)
	proxy := uplinktest.NewProxy(t, k.Endpoint, 14)
	proxy.Set(uplinktest.Faults{Blackout: true}) // offline: every fix is kept
	f := newFeeder(t, 10)
	cfg := writeConfig(t, f.path, proxy.URL, stream)
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conf := regexp.MustCompile(`(?m)^dir = .*$`).ReplaceAllString(string(data), "dir = "+strconv.Quote(state))
	writeFile(t, cfg, strings.Replace(conf, `commit_interval = "200ms"`, `commit_interval = "500ms"`, 1))

	var windows lossWindows
	var logs strings.Builder
	armed := 0
	rng := rand.New(rand.NewPCG(14, 6))
	agent := startAgent(t, "run", "--config", cfg)
	f.start()
	for i := range cuts {
		if i == 0 {
			time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond) // the first start, on an empty directory
		} else {
			time.Sleep(time.Duration(300+rng.IntN(2200)) * time.Millisecond) // a random moment
		}
		if i == cuts/2 {
			proxy.Set(uplinktest.Faults{}) // the link returns: the backlog drains while the cuts go on
		}
		select {
		case <-agent.done:
			t.Fatalf("agent exited by itself before cut %d: %v\n%s", i+1, agent.err, agent.stderr.String())
		default:
		}
		plan := cutfs.CutPlan{Seed: rng.Uint64(), Pages: rng.Float64(), Dirs: rng.Float64(), Torn: true}
		var rep cutfs.CutReport
		var cut time.Time
		if i > 0 && rng.IntN(2) == 0 {
			// Inside the next commit: at one of its writes or syncs (bbolt syncs each commit, so a cut at a
			// random moment mostly falls between two).
			rep = fsys.CutAt(1+rng.IntN(6), plan)
			cut = time.Now()
			agent.cmd.Process.Kill()
			if rep.Fired {
				armed++
			}
		} else {
			cut = time.Now()
			go agent.cmd.Process.Kill()
			rep = fsys.Cut(plan)
		}
		select {
		case <-agent.done:
		case <-time.After(10 * time.Second):
			t.Fatal("agent did not die of SIGKILL")
		}
		f.pause()
		logs.WriteString(agent.stderr.String())
		t.Logf("cut %d: %+v", i+1, rep)
		fsys.Mount()
		agent = startAgent(t, "run", "--config", cfg)
		agent.waitLog(t, "receiver open") // every restart succeeds, whatever the cut left
		windows.add(cut.Add(-commitInterval-fsyncSlack), time.Now())
		f.start()
	}
	time.Sleep(2 * time.Second)
	written := f.pause()

	proxy.Set(uplinktest.Faults{})
	period := 100 * time.Millisecond
	got, lost := awaitEveryFixOutside(t, windows, agent, k, stream, f, period, written, 180*time.Second)
	agent.stop(t)
	logs.WriteString(agent.stderr.String())

	aside, _ := filepath.Glob(filepath.Join(state, "*.corrupt-*"))
	if len(aside) > 0 || strings.Contains(logs.String(), "damaged database moved aside") {
		t.Errorf("a cut made the agent move its database aside: %v", aside)
	}
	unfinished := strings.Count(logs.String(), "database creation was cut short")
	t.Logf("%d cuts (%d inside a write or sync): %d epochs written, %d fixes arrived, %d lost (%.1f per cut; one commit "+
		"interval is %d), 0 quarantined, %d unfinished creations started anew",
		cuts, armed, written, len(got.bySeq), lost, float64(lost)/float64(cuts), int(commitInterval/period), unfinished)
}
