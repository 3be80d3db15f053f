package buffer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Helpers for bench_test.go.

// benchDBPath returns a database path on a real block device: write_bytes in
// /proc/self/io counts only writes bound for one, and pages of a tmpfs file
// are shared memory, not file RSS. t.TempDir() is used unless it is tmpfs or
// ramfs; then a directory under /var/tmp, removed on cleanup.
func benchDBPath(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if memFS(t, dir) {
		var err error
		dir, err = os.MkdirTemp("/var/tmp", "gps-agent-bench-")
		if err != nil {
			t.Fatalf("bench dir: %v", err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		if memFS(t, dir) {
			t.Fatalf("bench dir: both %s and /var/tmp are in memory; need a disk to count writes", os.TempDir())
		}
	}
	return filepath.Join(dir, "buffer.db")
}

// memFS reports whether dir is on a filesystem held in memory.
func memFS(t *testing.T, dir string) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	// Statfs_t.Type is int32 on 32-bit ARM: compare as uint32, the magic numbers' own width.
	typ := uint32(st.Type)
	return typ == uint32(unix.TMPFS_MAGIC) || typ == uint32(unix.RAMFS_MAGIC)
}

// procWriteBytes returns write_bytes from /proc/self/io: bytes this process
// caused to be sent to the block device (counted as pages are dirtied).
func procWriteBytes(t testing.TB) int64 {
	t.Helper()
	v, err := procField("/proc/self/io", "write_bytes:")
	if err != nil {
		t.Fatalf("read write_bytes: %v", err)
	}
	return v
}

// procField returns the first number after the line prefix key in a /proc file.
func procField(path, key string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), key)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("%s: %s has no value", path, key)
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// rssNow returns VmRSS, RssAnon and RssFile of this process, in bytes.
func rssNow() ([3]int64, error) {
	var out [3]int64
	for i, k := range []string{"VmRSS:", "RssAnon:", "RssFile:"} {
		v, err := procField("/proc/self/status", k)
		if err != nil {
			return out, err
		}
		out[i] = v << 10 // kB
	}
	return out, nil
}

// fixEncoder encodes a 250-byte record that starts with its seq ("SEQ:"), as
// checkData expects; the rest is filler the size of the agent's JSON fix.
func fixEncoder(seq uint64) ([]byte, error) {
	b := make([]byte, 0, benchRecordSize)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ':')
	for len(b) < benchRecordSize {
		b = append(b, 'x')
	}
	return b, nil
}

// rssSampler samples this process's memory every 20 ms and keeps the sample
// with the highest VmRSS since the last reset.
type rssSampler struct {
	mu   sync.Mutex
	peak [3]int64
	err  error
}

func (s *rssSampler) run(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s.sample()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *rssSampler) sample() {
	v, err := rssNow()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = err
		return
	}
	if v[0] > s.peak[0] {
		s.peak = v
	}
}

// take samples once more, returns the peak since the last take, and resets it.
func (s *rssSampler) take() ([3]int64, error) {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.peak, s.err
	s.peak = [3]int64{}
	return p, err
}

// rssChild is the child process of TestBenchRSS: it holds only a buffer at
// path and prints "figure NAME VALUES..." lines on stdout.
func rssChild(t *testing.T, path string) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	const total = 1_000_000
	opts := quietOptions()
	opts.MaxBytes = 2 * total * benchRecordSize // the million must all stay

	var s rssSampler
	sctx, stop := context.WithCancel(ctx)
	sdone := make(chan struct{})
	go func() { defer close(sdone); s.run(sctx) }()
	defer func() { stop(); <-sdone }()
	report := func(name string, vals ...float64) {
		fmt.Printf("figure %s", name)
		for _, v := range vals {
			fmt.Printf(" %g", v)
		}
		fmt.Println()
	}
	phase := func(name string) {
		p, err := s.take()
		if err != nil {
			t.Fatalf("sample rss: %v", err)
		}
		report("rss_"+name, float64(p[0]), float64(p[1]), float64(p[2]))
	}

	b, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	stopRun := startRun(ctx, b)
	stopBuffer := func() {
		if err := stopRun(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	_, _ = s.take() // start from here: the test binary's own start-up is not the buffer's

	// Online: 100 fixes/s, each acked about 20 ms after its append, 3 s.
	paced(t, ctx, 300, func(now time.Time, pend *[]uint64) {
		if len(*pend) >= 2 {
			if err := b.Ack((*pend)[0]); err != nil {
				t.Fatalf("Ack: %v", err)
			}
			*pend = (*pend)[1:]
		}
		seq, err := b.Append(b.now(), fixEncoder)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		*pend = append(*pend, seq)
	})
	phase("online")

	// Fill: the uplink is down; a million fixes arrive, committed every
	// rssFillCommitEvery (a backlog builds over days; committing in groups
	// keeps the tail from holding it all).
	start := time.Now()
	for i := 1; i <= total; i++ {
		if _, err := b.Append(b.now(), fixEncoder); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if i%rssFillCommitEvery == 0 {
			if err := b.Commit(); err != nil {
				t.Fatalf("Commit: %v", err)
			}
		}
	}
	report("append_rate", float64(total)/time.Since(start).Seconds())
	phase("fill")

	// Hold: still down, 100 fixes/s for 3 s.
	paced(t, ctx, 300, func(time.Time, *[]uint64) {
		if _, err := b.Append(b.now(), fixEncoder); err != nil {
			t.Fatalf("Append: %v", err)
		}
	})
	phase("hold")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	report("file_size", float64(fi.Size()))

	// Reopen: the gateway restarts with the backlog on disk (Open reads every page).
	stopBuffer()
	_, _ = s.take()
	b, err = Open(path, opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	phase("open") // Open's consistency check reads every page
	stopRun = startRun(ctx, b)
	paced(t, ctx, 100, func(time.Time, *[]uint64) {
		if _, err := b.Append(b.now(), fixEncoder); err != nil {
			t.Fatalf("Append: %v", err)
		}
	})
	phase("reopen")

	// Drain: the uplink is back; read oldest first in batches of 500 (one
	// PutRecords) and ack each batch: first for 5 s at 1,000 records/s, the
	// most one shard (one truck) takes, then as fast as the buffer allows.
	if b.checkDone != nil {
		<-b.checkDone // the backlog counts once the background check has proven it
	}
	pending := b.Stats().Pending
	var after uint64
	drained := 0
	drainBatch := func() int {
		rs, err := b.Oldest(after, 500)
		if err != nil {
			t.Fatalf("Oldest: %v", err)
		}
		if len(rs) == 0 {
			return 0
		}
		seqs := make([]uint64, len(rs))
		for i, r := range rs {
			seqs[i] = r.Seq
		}
		if err := b.Ack(seqs...); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		after = seqs[len(seqs)-1]
		drained += len(rs)
		return len(rs)
	}
	halfSecond := time.NewTicker(500 * time.Millisecond)
	for range 10 {
		select {
		case <-ctx.Done():
			t.Fatalf("drain: %v", ctx.Err())
		case <-halfSecond.C:
		}
		drainBatch()
	}
	halfSecond.Stop()
	phase("drain")
	start = time.Now()
	from := drained
	for drainBatch() > 0 {
		if ctx.Err() != nil {
			t.Fatalf("drain: %v after %d records", ctx.Err(), drained)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	report("drain_rate", float64(drained-from)/time.Since(start).Seconds())
	phase("drain_fast")
	if drained != pending {
		t.Errorf("drained %d records, %d were pending", drained, pending)
	}
	if st := b.Stats(); st.Pending != 0 || st.DroppedMaxBytes != 0 {
		t.Errorf("after drain: pending %d, dropped %d", st.Pending, st.DroppedMaxBytes)
	}
	stopBuffer()
}

// paced calls step n times, every 10 ms (100/s), with a queue step may use.
func paced(t *testing.T, ctx context.Context, n int, step func(now time.Time, pend *[]uint64)) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var pend []uint64
	for range n {
		select {
		case <-ctx.Done():
			t.Fatalf("paced: %v", ctx.Err())
		case now := <-tick.C:
			step(now, &pend)
		}
	}
}

// startRun runs b.Run until the returned function is called; that function
// returns Run's error.
func startRun(ctx context.Context, b *Buffer) func() error {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}
