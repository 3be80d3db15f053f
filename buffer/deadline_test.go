package buffer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// These tests drive the real buffer, its real commit loop and a real file on
// synctest's clock: the commit deadlines are then exact, whatever the load on
// the machine, and fsync takes no time on that clock.

// loopRun is one synctest run of a buffer under Run: appends every `every`,
// each acked `delay` after its append (never when delay < 0), with a 1 s
// commit interval.
type loopRun struct {
	every, delay time.Duration
	n            int // appends
	interval     time.Duration
}

// loopResult is what a loopRun saw.
type loopResult struct {
	born      map[uint64]time.Time // append instant of each seq
	commits   []loopCommit         // commits that wrote records, in order
	allWrites []loopCommit         // every commit, with or without records
	pageBytes int64                // bytes of bbolt pages written while the loop ran
	records   int64                // record bytes appended
	st        Stats
}

type loopCommit struct {
	at   time.Time
	last uint64
}

// run drives b (opened in the bubble) and returns what it saw once every ack
// has landed and Run has had two more intervals; Run is stopped before the
// final clean commit so only the loop's own writes are counted.
func (r loopRun) run(t *testing.T, b *Buffer) loopResult {
	t.Helper()
	res := loopResult{born: map[uint64]time.Time{}}
	var mu sync.Mutex
	b.afterCommit = func(last uint64) {
		mu.Lock()
		defer mu.Unlock()
		c := loopCommit{at: time.Now(), last: last}
		res.allWrites = append(res.allWrites, c)
		if last > 0 {
			res.commits = append(res.commits, c)
		}
	}
	pages0 := txWrites(b)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var acks sync.WaitGroup
	for range r.n {
		seq, err := b.Append(time.Now(), fixEncoder)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		mu.Lock()
		res.born[seq] = time.Now()
		mu.Unlock()
		res.records += benchRecordSize
		if r.delay >= 0 {
			acks.Add(1)
			time.AfterFunc(r.delay, func() {
				defer acks.Done()
				if err := b.Ack(seq); err != nil {
					t.Errorf("Ack %d: %v", seq, err)
				}
			})
		}
		time.Sleep(r.every)
	}
	acks.Wait()
	time.Sleep(2 * r.interval)
	synctest.Wait()
	res.pageBytes = txWrites(b) * int64(os.Getpagesize())
	res.st = b.Stats()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	res.pageBytes -= pages0 * int64(os.Getpagesize())
	return res
}

// openBubble opens a buffer with the given commit interval inside a synctest
// bubble and closes it (checking the file) when the bubble's test ends.
func openBubble(t *testing.T, interval time.Duration) *Buffer {
	t.Helper()
	return openBubbleOpts(t, interval, 0)
}

// openBubbleOpts is openBubble with a MaxBytes (0: the default).
func openBubbleOpts(t *testing.T, interval time.Duration, maxBytes int64) *Buffer {
	t.Helper()
	opts := quietOptions()
	opts.CommitInterval = interval
	opts.MaxBytes = maxBytes
	path := filepath.Join(t.TempDir(), "buffer.db")
	b, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		checkDB(t, path)
	})
	return b
}

// TestOnlineFlashWrites: fully online, each fix acked a round trip after its
// append, the commit loop writes no record at all, so the flash writes stay
// under 1 % of the record bytes (they are zero: seq reservations, one per
// 32,768 fixes, do not fall in these runs). A round trip of 300 ms (LTE in
// poor coverage) is what the tick-and-grace loop wrote 40 times the record
// bytes for; 950 ms is just inside the 1 s deadline.
func TestOnlineFlashWrites(t *testing.T) {
	for _, tc := range []struct {
		name         string
		every, delay time.Duration
	}{
		{"1Hz_rtt60ms", time.Second, 60 * time.Millisecond},
		{"1Hz_rtt300ms", time.Second, 300 * time.Millisecond},
		{"10Hz_rtt60ms", 100 * time.Millisecond, 60 * time.Millisecond},
		{"10Hz_rtt300ms", 100 * time.Millisecond, 300 * time.Millisecond},
		{"100Hz_rtt300ms", 10 * time.Millisecond, 300 * time.Millisecond},
		{"10Hz_rtt950ms", 100 * time.Millisecond, 950 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := openBubble(t, time.Second)
				r := loopRun{every: tc.every, delay: tc.delay, n: int(30 * time.Second / tc.every), interval: time.Second}
				res := r.run(t, b)
				if res.pageBytes > res.records/100 {
					t.Errorf("%d fixes of %d B acked %v after append: %d B of pages written (%d commits), want <= 1%% of %d B",
						r.n, benchRecordSize, tc.delay, res.pageBytes, len(res.allWrites), res.records)
				}
				if len(res.commits) > 0 {
					t.Errorf("commits wrote records up to seqs %v; none should reach the disk", lasts(res.commits))
				}
				if res.st.Pending != 0 || res.st.Tail != 0 {
					t.Errorf("pending %d (tail %d) after every ack", res.st.Pending, res.st.Tail)
				}
			})
		})
	}
}

func lasts(cs []loopCommit) []uint64 {
	out := make([]uint64, len(cs))
	for i, c := range cs {
		out[i] = c.last
	}
	return out
}

// TestOfflineDeadline: offline (nothing acked), every fix is on disk within
// one commit interval of its append, and the fixes are grouped: one commit
// per interval at 10 Hz, not one per fix, also with the buffer full (every
// commit evicts).
func TestOfflineDeadline(t *testing.T) {
	for _, tc := range []struct {
		name     string
		every    time.Duration
		interval time.Duration
		maxBytes int64 // 0: default
	}{
		{"10Hz_1s", 100 * time.Millisecond, time.Second, 0},
		{"1Hz_1s", time.Second, time.Second, 0},
		{"7ms_200ms", 7 * time.Millisecond, 200 * time.Millisecond, 0},
		{"10Hz_1s_full", 100 * time.Millisecond, time.Second, 25 * benchRecordSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := openBubbleOpts(t, tc.interval, tc.maxBytes)
				const span = 20 * time.Second
				r := loopRun{every: tc.every, delay: -1, n: int(span / tc.every), interval: tc.interval}
				res := r.run(t, b)
				checkDeadlines(t, res, tc.interval, nil)
				// One commit per interval, plus one for the last partial group.
				if max := int(span/tc.interval) + 1; len(res.allWrites) > max {
					t.Errorf("%d commits for %v of fixes every %v, want at most %d (one per %v interval)",
						len(res.allWrites), span, tc.every, max, tc.interval)
				}
				want := r.n
				if tc.maxBytes > 0 {
					want = int(tc.maxBytes / benchRecordSize)
				}
				if res.st.Pending != want || res.st.Tail != 0 {
					t.Errorf("pending %d (tail %d), want %d committed", res.st.Pending, res.st.Tail, want)
				}
			})
		})
	}
}

// checkDeadlines fails for each seq in res (except those in skip) not written
// by a commit that ended within one interval of its append.
func checkDeadlines(t *testing.T, res loopResult, interval time.Duration, skip map[uint64]bool) {
	t.Helper()
	for seq, born := range res.born {
		if skip[seq] {
			continue
		}
		var at time.Time
		for _, c := range res.commits {
			if c.last >= seq {
				at = c.at
				break
			}
		}
		switch {
		case at.IsZero():
			t.Errorf("seq %d (appended at %v) never committed", seq, born)
		case at.Sub(born) > interval:
			t.Errorf("seq %d committed %v after its append, want <= %v", seq, at.Sub(born), interval)
		}
	}
}

// TestLateAcksMeetDeadlines: online with some acks later than the interval
// (a retried call) and some never (the link drops): every fix not acked by
// its deadline is on disk by then, and the late ones, once acked, are
// deleted within one more interval.
func TestLateAcksMeetDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		b := openBubble(t, interval)
		res := loopResult{born: map[uint64]time.Time{}}
		var mu sync.Mutex
		b.afterCommit = func(last uint64) {
			if last > 0 {
				mu.Lock()
				res.commits = append(res.commits, loopCommit{at: time.Now(), last: last})
				mu.Unlock()
			}
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()
		lingered := watchAckedDisk(ctx, b, interval)

		// The ack delay of fix i: every 7th is late by up to 2 s, every 50th never comes, the rest take 300 ms.
		delay := func(i int) time.Duration {
			switch {
			case i%50 == 49:
				return -1
			case i%7 == 3:
				return interval + time.Duration(1+i%5)*300*time.Millisecond
			}
			return 300 * time.Millisecond
		}
		acked := map[uint64]bool{} // acked before its deadline
		for i := range 200 {
			seq, err := b.Append(time.Now(), fixEncoder)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			res.born[seq] = time.Now()
			mu.Unlock()
			if d := delay(i); d >= 0 {
				acked[seq] = d < interval
				time.AfterFunc(d, func() {
					if err := b.Ack(seq); err != nil {
						t.Errorf("Ack: %v", err)
					}
				})
			}
			time.Sleep(time.Duration(50+i%3*60) * time.Millisecond)
		}
		time.Sleep(3*interval + 2*time.Second) // the last acks, and one interval to delete them
		synctest.Wait()
		mu.Lock()
		checkDeadlines(t, res, interval, acked)
		mu.Unlock()
		b.mu.Lock()
		left := len(b.ackedDisk)
		b.mu.Unlock()
		if left != 0 {
			t.Errorf("%d acked records still on disk an interval after their acks", left)
		}
		if st := b.Stats(); st.Pending != 4 { // the 4 never acked
			t.Errorf("pending %d, want the 4 fixes never acked", st.Pending)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		for _, l := range lingered() {
			t.Error(l)
		}
	})
}

// watchAckedDisk samples b every 10 ms until ctx ends and returns a function
// that lists the acked committed records that stayed on disk longer than
// limit after their ack (as first seen).
func watchAckedDisk(ctx context.Context, b *Buffer, limit time.Duration) func() []string {
	var mu sync.Mutex
	var bad []string
	seen := map[uint64]time.Time{}
	reported := map[uint64]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			now := time.Now()
			b.mu.Lock()
			for s := range seen {
				if _, ok := b.ackedDisk[s]; !ok {
					delete(seen, s)
				}
			}
			for s := range b.ackedDisk {
				first, ok := seen[s]
				if !ok {
					seen[s] = now
					continue
				}
				if now.Sub(first) > limit+10*time.Millisecond && !reported[s] { // 10 ms: the sampling
					reported[s] = true
					mu.Lock()
					bad = append(bad, fmt.Sprintf("seq %d acked by %v still on disk at %v", s, first.Format("05.000"), now.Format("05.000")))
					mu.Unlock()
				}
			}
			b.mu.Unlock()
		}
	}()
	return func() []string {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return bad
	}
}

// TestOnlineDrainDeletes: online with a backlog on disk being drained while
// live fixes keep a record in flight at every moment, the acked backlog is
// deleted within one interval of its acks (deletions do not wait for a live
// record to fall due, which online none does), and no live fix is written.
func TestOnlineDrainDeletes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		b := openBubble(t, interval)
		const backlog = 2000
		for range backlog {
			if _, err := b.Append(time.Now(), fixEncoder); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		var wrote []uint64
		b.afterCommit = func(last uint64) {
			if last > 0 {
				wrote = append(wrote, last)
			}
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx) }()
		lingered := watchAckedDisk(ctx, b, interval)

		// The drain: 100 backlog records acked every 250 ms, as a paced backfill does.
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			var after uint64
			for {
				rs, err := b.Oldest(after, 100)
				if err != nil {
					t.Errorf("Oldest: %v", err)
					return
				}
				var seqs []uint64
				for _, r := range rs {
					if r.Seq <= backlog {
						seqs = append(seqs, r.Seq)
						after = r.Seq
					}
				}
				if len(seqs) == 0 {
					return
				}
				if err := b.Ack(seqs...); err != nil {
					t.Errorf("Ack: %v", err)
				}
				time.Sleep(250 * time.Millisecond)
			}
		}()
		// Live: 10 fixes/s, each acked 300 ms after its append.
		for range 80 {
			seq, err := b.Append(time.Now(), fixEncoder)
			if err != nil {
				t.Fatal(err)
			}
			time.AfterFunc(300*time.Millisecond, func() {
				if err := b.Ack(seq); err != nil {
					t.Errorf("Ack: %v", err)
				}
			})
			time.Sleep(100 * time.Millisecond)
		}
		<-drained
		time.Sleep(2 * interval)
		synctest.Wait()
		if st := b.Stats(); st.Pending != 0 {
			t.Errorf("pending %d after the drain and every live ack", st.Pending)
		}
		if len(wrote) > 0 {
			t.Errorf("commits wrote live records up to seqs %v; none was due", wrote)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		for _, l := range lingered() {
			t.Error(l)
		}
	})
}

// txWrites is the number of page writes bbolt has made on b's file since Open.
func txWrites(b *Buffer) int64 {
	st := b.db.Stats()
	return st.TxStats.GetWrite()
}
