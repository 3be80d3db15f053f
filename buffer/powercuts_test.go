//go:build linux && (amd64 || arm64)

package buffer

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/internal/cutfs"
	"github.com/fleetedge/gps-agent/internal/cutfs/cutfstest"
)

// TestPowerCuts cuts the power at random moments while a child process runs the buffer, spread over the
// scenarios of powerCutChild: the child is killed (SIGKILL) and the filesystem cut at the same instant, with a
// seeded random share of the unsynced pages and directories reaching the disk and one page torn. After each cut,
// the filesystem is mounted again and the buffer reopened: it must open, move nothing aside (but the file the
// quarantine scenario damaged), keep every record whose commit the child saw return and did not ack, and never
// hand out a seq again. GPS_AGENT_CUTS sets the number of cuts (default 10; make cuts runs 100).
func TestPowerCuts(t *testing.T) {
	if testing.Short() {
		t.Skip("cuts the power many times")
	}
	cuts := 10
	if v := os.Getenv("GPS_AGENT_CUTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("GPS_AGENT_CUTS=%q", v)
		}
		cuts = n
	}
	fsys := cutfstest.New(t)
	dir := filepath.Join(fsys.Dir, "state")
	path := filepath.Join(dir, "buffer.db")
	rng := rand.New(rand.NewPCG(14, 100))

	var (
		maxHanded     uint64
		handedBy      = map[uint64]int{}  // seq -> run that handed it out
		required      = map[uint64]bool{} // committed, not acked: must be there
		cutQuarant    int
		unfinished    uint64
		lostTotal     int
		byScenario    = map[string]int{}
		pagesKept     int
		pagesDropped  int
		armed         int
		maxLostAge    time.Duration
		timed         int
		compactions   int
		midCompaction int
	)
	// One commit interval and its grace (powerCutChild's 50 ms, 1.1x), plus the fsync's own time, generous
	// for a loaded 2-core machine where the FUSE server and the child share the cores.
	const lossWindow = 55*time.Millisecond + 500*time.Millisecond
	for run := range cuts {
		scenario := powerCutScenarios[run%len(powerCutScenarios)]
		byScenario[scenario]++
		switch scenario {
		case "fresh": // the first start on an empty directory: a deliberate wipe, after which seqs start over
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			syncPath(t, fsys.Dir)
			maxHanded, handedBy, required = 0, map[uint64]int{}, map[uint64]bool{}
		case "quarantine": // damage no cut makes: the records in the file are gone, the seqs still never repeat
			if err := os.WriteFile(path, garbage, 0o640); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			syncPath(t, dir)
			required = map[uint64]bool{}
		}
		var wait time.Duration
		if scenario == "fresh" || scenario == "quarantine" {
			wait = time.Duration(rng.IntN(60)) * time.Millisecond // in the middle of Open, or soon after
		} else {
			wait = time.Duration(100+rng.IntN(1400)) * time.Millisecond
		}
		if scenario == "compact" {
			wait = time.Duration(rng.IntN(700)) * time.Millisecond // the compaction starts at the first tick, and takes a while
		}
		plan := cutfs.CutPlan{Seed: rng.Uint64(), Pages: rng.Float64(), Dirs: rng.Float64(), Torn: true}
		// Half the cuts come at a random moment (mostly between commits, as bbolt syncs each one); the others
		// at a random write or sync from then on, inside it: in the middle of a commit, a reservation, a
		// compaction's copy or swap, a quarantine or a creation.
		atWrite := 0
		if rng.IntN(2) == 0 || scenario == "fresh" || scenario == "quarantine" {
			atWrite = 1 + rng.IntN(12)
		} else {
			timed++
		}
		if scenario == "fresh" || scenario == "quarantine" {
			// Armed at once: the cut lands among Open's first writes and syncs (the quarantine's, bbolt's
			// first four pages and their sync, the directory syncs).
			wait, atWrite = 0, 1+rng.IntN(6)
		}
		events, rep, cutAt := runCutChild(t, fsys, fmt.Sprintf("%s|%d|%s", scenario, run, path), scenario != "fresh" && scenario != "quarantine", wait, atWrite, plan)
		if rep.Fired {
			armed++
		}
		pagesKept += rep.PagesKept
		pagesDropped += rep.PagesDropped

		var handed []uint64
		var lastCommit uint64
		acked := map[uint64]bool{}
		appendedAt := map[uint64]time.Time{}
		for _, ev := range events {
			switch ev.kind {
			case "a":
				handed = append(handed, ev.n)
				appendedAt[ev.n] = ev.at
			case "c":
				lastCommit = ev.n
			case "m":
				compactions++
			case "k":
				acked[ev.n] = true
				delete(required, ev.n)
			}
		}
		for _, s := range handed {
			if s <= maxHanded {
				t.Fatalf("cut %d (%s): seq %d handed out again (up to %d before)", run, scenario, s, maxHanded)
			}
			handedBy[s] = run
			if s <= lastCommit && !acked[s] {
				required[s] = true
			}
			// The loss window: a record appended before the cut and not committed must be one the commit
			// in flight, or the next, would have written. (A cut armed at a write fires later than cutAt,
			// and the child appends to memory until killed: only the timed cuts measure the window.)
			if s > lastCommit && !acked[s] && atWrite == 0 && !appendedAt[s].After(cutAt) {
				lostTotal++
				age := cutAt.Sub(appendedAt[s])
				maxLostAge = max(maxLostAge, age)
				if age > lossWindow {
					t.Errorf("cut %d (%s): seq %d appended %v before the cut was not committed (window %v)", run, scenario, s, age, lossWindow)
				}
			}
		}
		if len(handed) > 0 {
			maxHanded = handed[len(handed)-1]
		}

		fsys.Mount()
		damaged := false
		if b, err := os.ReadFile(path); err == nil && bytes.HasPrefix(b, garbage[:64]) {
			damaged = true // the cut came before the quarantine's rename reached the disk
		}
		if _, err := os.Stat(path + ".compact"); err == nil {
			midCompaction++ // the cut came while a compaction's copy was on disk
		}
		b, err := Open(path, quietOptions())
		if err != nil {
			t.Fatalf("cut %d (%s, %+v): Open after the cut: %v", run, scenario, rep, err)
		}
		st := b.Stats()
		if st.Quarantined > 0 && !damaged {
			cutQuarant++
			t.Errorf("cut %d (%s, %+v): the cut made Open move the file aside", run, scenario, rep)
		}
		unfinished += st.Unfinished
		rs, err := b.Oldest(0, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		have := map[uint64]bool{}
		for _, r := range rs {
			have[r.Seq] = true
			var s uint64
			var tag string
			if _, err := fmt.Sscanf(string(r.Data), "%d:r%s", &s, &tag); err != nil || s != r.Seq {
				t.Fatalf("cut %d: record %d holds %q", run, r.Seq, r.Data)
			}
			if by, ok := handedBy[r.Seq]; ok && !strings.HasPrefix(tag, strconv.Itoa(by)) {
				t.Fatalf("cut %d: seq %d holds a record of run %s, but run %d handed it out", run, r.Seq, tag, by)
			}
		}
		for s := range required {
			if !have[s] {
				t.Fatalf("cut %d (%s, %+v): seq %d was committed and not acked, but is gone", run, scenario, rep, s)
			}
		}
		if st.NextSeq <= maxHanded {
			t.Fatalf("cut %d (%s): next seq %d, but %d was handed out", run, scenario, st.NextSeq, maxHanded)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		checkDB(t, path)
		maxHanded = max(maxHanded, st.NextSeq-1)
	}
	t.Logf("%d cuts %v: 0 restarts failed, %d quarantines caused by a cut, %d unfinished creations started anew, "+
		"%d records appended before a timed cut and not committed (%.1f per timed cut, the oldest %v before the cut), "+
		"%d cuts inside a write or sync, %d compactions done before the cuts, %d cuts left a compaction's copy, "+
		"%d unsynced pages reached the disk and %d did not",
		cuts, byScenario, cutQuarant, unfinished, lostTotal, float64(lostTotal)/float64(max(timed, 1)), maxLostAge.Round(time.Millisecond), armed, compactions, midCompaction, pagesKept, pagesDropped)
}

// runCutChild starts the child, waits (from its "ready" if afterReady, else from its start), then kills it with
// SIGKILL and cuts the filesystem at the same instant; or, if atWrite > 0, arms the cut at that write or sync
// from then on and kills the child when it fired. It returns what the child reported.
func runCutChild(t *testing.T, fsys *cutfstest.FS, spec string, afterReady bool, wait time.Duration, atWrite int, plan cutfs.CutPlan) ([]timedEvent, cutfs.CutReport, time.Time) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), powerCutChildEnv+"="+spec)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	evc := make(chan timedEvent, 1024)
	go func() {
		defer close(evc)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			kind, num, _ := strings.Cut(sc.Text(), " ")
			if n, err := strconv.ParseUint(num, 10, 64); err == nil {
				evc <- timedEvent{childEvent{kind, n}, time.Now()}
			}
		}
	}()
	var events []timedEvent
	timer := time.NewTimer(wait)
	if afterReady {
		timer.Stop()
	}
	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case ev, ok := <-evc:
			if !ok {
				t.Fatalf("child exited before the cut: %s", stderr.String())
			}
			events = append(events, ev)
			if ev.kind == "ready" && afterReady {
				timer.Reset(wait)
			}
		case <-timer.C:
			break wait
		case <-deadline:
			t.Fatal("child not ready in 30 s")
		}
	}
	var rep cutfs.CutReport
	cutAt := time.Now()
	if atWrite > 0 {
		rep = fsys.CutAt(atWrite, plan)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	} else {
		killed := make(chan struct{})
		go func() { _ = syscall.Kill(pid, syscall.SIGKILL); close(killed) }()
		rep = fsys.Cut(plan)
		<-killed
	}
	for ev := range evc {
		events = append(events, ev)
	}
	// After the cut every write fails: the child may have exited on that error before the kill reached it.
	_ = cmd.Wait()
	return events, rep, cutAt
}

// timedEvent is a child's line and when the test read it.
type timedEvent struct {
	childEvent
	at time.Time
}
