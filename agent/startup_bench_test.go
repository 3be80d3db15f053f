//go:build linux && (amd64 || arm64)

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/buffer"
	"github.com/fleetedge/gps-agent/internal/benchfig"
	"github.com/fleetedge/gps-agent/internal/cutfs/cutfstest"
	"github.com/fleetedge/gps-agent/nmea"
	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// startReadRate is gateway flash at its slow end: 20 MB/s.
const startReadRate = 20_000_000

// TestBenchStartFullBuffer measures, through the real agent process against
// kinesalite, the time from starting the agent to the PutRecords reply that
// accepts its first live fix, with a full default buffer (MaxBytes of fixes,
// about 200 MiB of file) read through the power-cut filesystem throttled to
// 20 MB/s: after a clean stop, and after a SIGKILL (the common start of a
// truck without a supercap, whose power goes at every ignition-off). Reading
// the whole file first would take 10 s; the target is 2 s.
func TestBenchStartFullBuffer(t *testing.T) {
	benchfig.Require(t)
	testExecutable(t)
	const stream = "startup"
	fsys := cutfstest.New(t) // skips without root or /dev/fuse
	k := uplinktest.StartKinesalite(t, stream, 1)
	watch, endpoint := newAcceptWatch(t, k.Endpoint)
	f := newFeeder(t, 10)
	cfg := writeConfig(t, f.path, endpoint, stream)
	state := filepath.Join(fsys.Dir, "state")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg, regexp.MustCompile(`(?m)^dir = .*$`).ReplaceAllString(string(data), "dir = "+strconv.Quote(state)))

	// The full buffer is written straight to the disk under the filesystem, unmounted: faster than through FUSE.
	fsys.Stop()
	n, size := fillBuffer(t, filepath.Join(fsys.Backing, "state", bufferFile))
	t.Logf("prepared %d fixes, a %d MiB file", n, size>>20)

	fsys.ReadRate = startReadRate
	for _, run := range []struct {
		name  string
		after string
	}{{"clean", "a clean stop"}, {"unclean", "a SIGKILL"}} {
		fsys.Mount() // a new mount: nothing of the file in the page cache
		f.start()
		start := time.Now()
		agent := startAgent(t, "run", "--config", cfg)
		from := uint64(n + 1) // after the clean stop of the prepared buffer, no gap
		if run.name == "unclean" {
			from = 0 // the buffer logs where seqs go on
		}
		first, at := firstLive(t, agent, watch, from, 60*time.Second)
		took := at.Sub(start)
		t.Logf("%s: first live fix seq %d accepted %v after start", run.name, first, took)
		fig := benchfig.AtMost(fmt.Sprintf("agent: start to first live fix accepted (kinesalite), full default buffer (%d MiB) read at 20 MB/s, after %s", size>>20, run.after),
			took.Seconds(), "s", 2)
		fig.Note = fmt.Sprintf("%d fixes buffered; reading the whole file at 20 MB/s takes %.1f s", n, float64(size)/startReadRate)
		benchfig.Record(t, fig)
		if run.name == "clean" {
			// The backlog is delivered once the background check has proven it.
			took := checkTook(t, agent, 120*time.Second)
			ref := benchfig.Reference(fmt.Sprintf("agent: background check of a full default buffer (%d MiB) read at 20 MB/s, fixes flowing meanwhile", size>>20), took.Seconds(), "s")
			ref.Note = "the backlog is read (delivered, evicted, compacted) only after it"
			benchfig.Record(t, ref)
			agent.cmd.Process.Kill() // the next start is unclean
			<-agent.done
		} else {
			agent.stop(t)
		}
		f.pause()
		fsys.Stop()
	}
}

// fillBuffer fills a new buffer at path with fixes until it holds MaxBytes of them, and stops it cleanly.
func fillBuffer(t *testing.T, path string) (int, int64) {
	t.Helper()
	b, err := buffer.Open(path, buffer.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	// Fixes of the last three days at 3 Hz: none is past MaxAge when live fixes arrive.
	sim := nmea.Simulator{Rate: 3, Start: time.Now().UTC().Add(-72 * time.Hour), Seed: 11}
	enc := newRecordEncoder("TRK-E2E")
	n := 0
	for ; b.Stats().PendingBytes < buffer.DefaultMaxBytes*98/100; n++ {
		fix := sim.Fix(n)
		if _, err := b.Append(fix.Time, func(seq uint64) ([]byte, error) { return enc.encode(nil, seq, fix, fix.Time), nil }); err != nil {
			t.Fatal(err)
		}
		if n%20000 == 19999 {
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return n, fi.Size()
}

// firstLive waits for the first fix of this run accepted by Kinesis: one with a seq at or past from, the run's
// first; from 0: the next_seq the buffer logs at an unclean start.
func firstLive(t *testing.T, agent *agentProc, w *acceptWatch, from uint64, timeout time.Duration) (uint64, time.Time) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	nextSeq := regexp.MustCompile(`next_seq=(\d+)`)
	for time.Now().Before(deadline) {
		select {
		case <-agent.done:
			t.Fatalf("agent exited (%v):\n%s", agent.err, agent.stderr.String())
		default:
		}
		if from == 0 {
			if m := nextSeq.FindStringSubmatch(agent.stderr.String()); m != nil {
				from, _ = strconv.ParseUint(m[1], 10, 64)
			}
		}
		if from > 0 {
			var best uint64
			var at time.Time
			w.mu.Lock()
			for s, when := range w.accepted {
				if s >= from && (at.IsZero() || when.Before(at)) {
					best, at = s, when
				}
			}
			w.mu.Unlock()
			if !at.IsZero() {
				return best, at
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no live fix accepted in %v:\n%s", timeout, agent.stderr.String())
	return 0, time.Time{}
}

// checkTook waits for the buffer's log of its finished background check and returns the time it took.
func checkTook(t *testing.T, agent *agentProc, timeout time.Duration) time.Duration {
	t.Helper()
	re := regexp.MustCompile(`msg="background check of the buffer done".* took=(\S+)`)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(agent.stderr.String()); m != nil {
			d, err := time.ParseDuration(m[1])
			if err != nil {
				t.Fatalf("background check log: %v", err)
			}
			return d
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no finished background check logged in %v", timeout)
	return 0
}
