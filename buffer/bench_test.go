package buffer

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/internal/benchfig"
	"golang.org/x/sys/unix"
)

// The figures issue 6 asks of the buffer: bytes written to disk per fix with
// the uplink healthy and down, append and drain rates, and the resident
// memory of a process holding only the buffer. They run only under make
// bench (benchfig.Require); the helpers are in benchhelp_test.go.

// benchRecordSize is the size of one encoded fix, as the agent's JSON record.
const benchRecordSize = 250

// TestBenchWriteBytes measures the bytes the process writes to the block
// device per fix, from /proc/self/io write_bytes, for 10 s at 100 fixes/s
// (and 20 s at the agent's 1 fix/s) with the default 1 s commit interval:
// online, each record acked a round trip after its append (20 ms: a local
// Kinesis; 60 ms: LTE; 300 ms: LTE in poor coverage), all within the record's
// commit deadline, and offline (nothing acked), where it also counts commits
// per interval: the records of one interval must share one commit.
func TestBenchWriteBytes(t *testing.T) {
	benchfig.Require(t)
	const fast, slow = 10 * time.Millisecond, time.Second
	tests := []struct {
		name   string
		rtt    time.Duration // ack delay; 0: never acked
		every  time.Duration // between appends
		figure string
		limit  float64
	}{
		{name: "online_20ms", rtt: 20 * time.Millisecond, every: fast, figure: "buffer: bytes written to disk per fix, online (acked in 20 ms), 250 B fixes", limit: 0.01 * benchRecordSize},
		{name: "online_60ms", rtt: 60 * time.Millisecond, every: fast, figure: "buffer: bytes written to disk per fix, online at a 60 ms round trip (LTE), 250 B fixes", limit: 0.01 * benchRecordSize},
		{name: "online_300ms", rtt: 300 * time.Millisecond, every: fast, figure: "buffer: bytes written to disk per fix, online at a 300 ms round trip (poor link), 250 B fixes", limit: 0.01 * benchRecordSize},
		{name: "online_300ms_1Hz", rtt: 300 * time.Millisecond, every: slow, figure: "buffer: bytes written to disk per fix, online at a 300 ms round trip (poor link), 1 fix/s, 250 B fixes", limit: 0.01 * benchRecordSize},
		{name: "offline", every: fast, figure: "buffer: bytes written to disk per fix, offline (nothing acked), 250 B fixes", limit: 2 * benchRecordSize},
		{name: "offline_1Hz", every: slow, figure: "buffer: bytes written to disk per fix, offline (nothing acked), 1 fix/s, 1 s commits, 250 B fixes", limit: 16 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := int(10 * time.Second / tt.every)
			if tt.every == slow {
				n = 20
			}
			benchWriteBytes(t, tt.rtt, tt.every, n, tt.figure, tt.limit)
		})
	}
}

// benchWriteBytes is one case of TestBenchWriteBytes: n appends, one every
// `every`; rtt 0 is offline.
func benchWriteBytes(t *testing.T, rtt, every time.Duration, n int, figure string, limit float64) {
	path := benchDBPath(t)
	opts := quietOptions()
	b, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		checkDB(t, path)
	})

	// The acker acks each seq rtt after its append, in order.
	type due struct {
		seq uint64
		at  time.Time
	}
	acks := make(chan due, 4096)
	var ackWG sync.WaitGroup
	var ackErr error
	ackWG.Add(1)
	go func() {
		defer ackWG.Done()
		for d := range acks {
			if w := time.Until(d.at); w > 0 {
				timer := time.NewTimer(w)
				select {
				case <-ctx.Done():
					timer.Stop()
					ackErr = ctx.Err()
					return
				case <-timer.C:
				}
			}
			if err := b.Ack(d.seq); err != nil {
				ackErr = err
				return
			}
		}
	}()

	before := procWriteBytes(t)
	start := time.Now()
	tick := time.NewTicker(every)
	for range n {
		select {
		case <-ctx.Done():
			t.Fatal("timed out appending")
		case <-tick.C:
		}
		seq, err := b.Append(b.now(), fixEncoder)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if rtt > 0 {
			acks <- due{seq: seq, at: time.Now().Add(rtt)}
		}
	}
	tick.Stop()
	appending := time.Since(start)
	close(acks)
	ackWG.Wait()
	if ackErr != nil {
		t.Fatalf("Ack: %v", ackErr)
	}
	// Wait one commit interval, so every record's deadline has passed:
	// offline, the last group must be on disk to be counted; online, it must
	// not be. An online Run that writes nothing has nothing to signal, hence
	// a timer.
	wait := time.NewTimer(opts.CommitInterval)
	select {
	case <-ctx.Done():
		t.Fatal("timed out waiting for the last commit")
	case <-wait.C:
	}
	if rtt == 0 {
		waitTail(t, ctx, b)
	}
	after := procWriteBytes(t)

	st := b.Stats()
	t.Logf("%d fixes, %d B written, %d commits, pending %d (tail %d)", n, after-before, st.Commits, st.Pending, st.Tail)
	if rtt > 0 && st.Pending != 0 {
		t.Errorf("online: %d records still pending after every ack", st.Pending)
	}
	if rtt == 0 && (st.Pending != n || st.Tail != 0) {
		t.Errorf("offline: pending %d (tail %d), want %d all committed", st.Pending, st.Tail, n)
	}
	perFix := float64(after-before) / float64(n)
	fig := benchfig.AtMost(figure, perFix, "B", limit)
	rate := fmt.Sprintf("%g/s", time.Second.Seconds()/every.Seconds())
	fig.Note = fmt.Sprintf("%d fixes at %s, 1 s commit interval; %d commits wrote", n, rate, st.Commits)
	if rtt == 0 {
		// The records of one interval share one commit: one per interval
		// of appending (the last group is committed an interval after the
		// last append), not one per fix.
		intervals := appending.Seconds() / opts.CommitInterval.Seconds()
		per := benchfig.AtMost("buffer: commits per commit interval, offline at "+rate, float64(st.Commits)/intervals, "commits", 1.1)
		per.Note = fmt.Sprintf("%d commits for %d fixes appended over %.2f s (%.2f intervals): one group per interval, not one commit per fix", st.Commits, n, appending.Seconds(), intervals)
		benchfig.Record(t, per)
		// The floor: a bbolt commit fsyncs twice (its pages, then the meta
		// page), and no fsync writes less than one page.
		page := fsyncPage(t, filepath.Dir(path))
		floor := 2 * float64(page) * float64(st.Commits) / float64(n)
		fl := benchfig.Reference("buffer: floor of one page per fsync (two a bbolt commit), per fix, offline at "+rate, floor, "B")
		fl.Note = fmt.Sprintf("one %d B page write + fdatasync measured %d B of write_bytes; %d commits for %d fixes", os.Getpagesize(), page, st.Commits, n)
		benchfig.Record(t, fl)
	} else {
		// Online, the only writes are seq reservations, one every
		// SeqBlock/2 appends: too rare to fall in a 10 s run, so measure
		// one and spread it over its fixes. (Offline they ride in the
		// regular commits.) Average a few: the filesystem's metadata
		// writes vary from one to the next.
		const reservations = 5
		w0 := procWriteBytes(t)
		for i := range uint64(reservations) {
			b.commitMu.Lock()
			err := b.reserve(st.ReservedSeq + (i+1)*b.opts.SeqBlock)
			b.commitMu.Unlock()
			if err != nil {
				t.Fatalf("reserve: %v", err)
			}
		}
		reserve := float64(procWriteBytes(t)-w0) / reservations / float64(b.opts.SeqBlock/2)
		fig = benchfig.AtMost(figure, perFix+reserve, "B", limit)
		fig.Note = fmt.Sprintf("%.3g B/fix measured over %d fixes at %s (%d commits wrote; target 1 %% of the record bytes) + %.3g B/fix for seq reservations (one every %d fixes)",
			perFix, n, rate, st.Commits, reserve, b.opts.SeqBlock/2)
	}
	benchfig.Record(t, fig)
}

// fsyncPage measures the write_bytes of one page written into an existing
// file of dir and fdatasynced: the least any fsync costs.
func fsyncPage(t *testing.T, dir string) int64 {
	t.Helper()
	f, err := os.CreateTemp(dir, "floor-")
	if err != nil {
		t.Fatalf("floor: %v", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	page := make([]byte, os.Getpagesize())
	const n = 10
	for i := range n {
		if _, err := f.WriteAt(page, int64(i*len(page))); err != nil {
			t.Fatalf("floor: %v", err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("floor: %v", err)
	}
	w0 := procWriteBytes(t)
	for i := range n {
		if _, err := f.WriteAt(page, int64(i*len(page))); err != nil {
			t.Fatalf("floor: %v", err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			t.Fatalf("floor: %v", err)
		}
	}
	return (procWriteBytes(t) - w0) / n
}

// waitTail waits until the tail is empty (everything committed).
func waitTail(t *testing.T, ctx context.Context, b *Buffer) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for b.Stats().Tail > 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for the tail to be committed: %v", ctx.Err())
		case <-tick.C:
		}
	}
}

// rssChildEnv names the database path when the test binary runs as the RSS
// child (TestBenchRSS re-executes itself).
const rssChildEnv = "BUFFER_RSS_CHILD_DB"

// rssFillCommitEvery is how many appends the child makes between commits
// while filling: a backlog builds at 1 Hz, not at memory speed, so the tail
// must not be allowed to hold the whole million.
const rssFillCommitEvery = 1000

// TestBenchRSS runs a child process that holds only a buffer and reports its
// resident memory (VmRSS, and RssAnon and RssFile apart: bbolt's mmap pages
// are file RSS) in each phase: steady state online, filling to 1,000,000
// buffered fixes, holding them, and draining them; plus the append and
// drain rates.
func TestBenchRSS(t *testing.T) {
	if path := os.Getenv(rssChildEnv); path != "" {
		rssChild(t, path)
		return
	}
	benchfig.Require(t)
	path := benchDBPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBenchRSS$", "-test.count=1")
	cmd.Env = append(os.Environ(), rssChildEnv+"="+path, benchfig.Env+"=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rss child: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	figs := map[string][]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "figure" {
			continue
		}
		var vals []float64
		for _, s := range f[2:] {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("child line %q: %v", sc.Text(), err)
			}
			vals = append(vals, v)
		}
		figs[f[1]] = vals
		t.Logf("child: %s", sc.Text())
	}
	get := func(key string, n int) []float64 {
		v, ok := figs[key]
		if !ok || len(v) != n {
			t.Fatalf("child did not report %s (%d values); stdout:\n%s", key, n, out)
		}
		return v
	}
	const mib = 1 << 20
	for _, ph := range []struct {
		key, name string
		limit     float64
	}{
		{"online", "steady state online (100 fixes/s, acked in 20 ms)", 15},
		{"fill", "filling to 1,000,000 buffered fixes", 32},
		{"hold", "holding 1,000,000 buffered fixes", 32},
		{"reopen", "after reopening with 1,000,000 buffered fixes", 32},
		{"drain", "draining 1,000,000 buffered fixes at 1,000 records/s (a shard's limit)", 32},
	} {
		v := get("rss_"+ph.key, 3) // peak VmRSS, RssAnon and RssFile at that peak, bytes
		rss := benchfig.AtMost("buffer: RSS (VmRSS peak) "+ph.name, v[0]/mib, "MiB", ph.limit)
		rss.Note = fmt.Sprintf("at the peak RssAnon %.1f MiB, RssFile %.1f MiB (bbolt mmap and the binary)", v[1]/mib, v[2]/mib)
		benchfig.Record(t, rss)
		benchfig.Record(t, benchfig.Reference("buffer: RssAnon at the VmRSS peak, "+ph.name, v[1]/mib, "MiB"))
		benchfig.Record(t, benchfig.Reference("buffer: RssFile at the VmRSS peak, "+ph.name, v[2]/mib, "MiB"))
	}
	benchfig.Record(t, benchfig.Reference(fmt.Sprintf("buffer: append rate, 250 B fixes, Commit every %d", rssFillCommitEvery), get("append_rate", 1)[0], "records/s"))
	benchfig.Record(t, benchfig.Reference("buffer: drain rate, Oldest(after, 500) + Ack, 1 s commits", get("drain_rate", 1)[0], "records/s"))
	v := get("rss_open", 3)
	open := benchfig.Reference("buffer: RSS (VmRSS peak) during Open of 1,000,000 buffered fixes", v[0]/mib, "MiB")
	open.Note = fmt.Sprintf("RssAnon %.1f MiB, RssFile %.1f MiB: Open's consistency check reads every page through bbolt's mmap; Open releases them before it returns", v[1]/mib, v[2]/mib)
	benchfig.Record(t, open)
	v = get("rss_drain_fast", 3)
	fast := benchfig.Reference("buffer: RSS (VmRSS peak) draining as fast as the buffer allows", v[0]/mib, "MiB")
	fast.Note = fmt.Sprintf("RssAnon %.1f MiB, RssFile %.1f MiB; no uplink acks this fast (one truck is one shard, 1,000 records/s): each commit deletes a second of acks in one transaction", v[1]/mib, v[2]/mib)
	benchfig.Record(t, fast)
	fsz := get("file_size", 1)[0]
	benchfig.Record(t, benchfig.Reference("buffer: database file size holding 1,000,000 fixes of 250 B", fsz/mib, "MiB"))
}
