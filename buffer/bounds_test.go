package buffer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestBounds: over MaxBytes or MaxAge the oldest records are dropped,
// counted, and Append keeps working.
func TestBounds(t *testing.T) {
	const rec = 10 // bytes per record: "NN:payloa" style, see data below
	data := func(seq uint64) ([]byte, error) { return fmt.Appendf(nil, "%03d:xxxxxx", seq), nil }
	tests := []struct {
		name        string
		maxBytes    int64
		maxAge      time.Duration
		run         func(t *testing.T, b *Buffer, clk *fakeClock)
		wantPending []uint64
		wantBytes   uint64
		wantAge     uint64
	}{
		{
			name: "max bytes in tail", maxBytes: 5 * rec,
			run: func(t *testing.T, b *Buffer, _ *fakeClock) {
				appendN(t, b, data, 8)
				commit(t, b)
			},
			wantPending: seqRange(4, 8), wantBytes: 3,
		},
		{
			name: "max bytes on disk", maxBytes: 5 * rec,
			run: func(t *testing.T, b *Buffer, _ *fakeClock) {
				appendN(t, b, data, 4)
				commit(t, b)
				appendN(t, b, data, 3)
				commit(t, b)
			},
			wantPending: seqRange(3, 7), wantBytes: 2,
		},
		{
			name: "max bytes counts acks first", maxBytes: 5 * rec,
			run: func(t *testing.T, b *Buffer, _ *fakeClock) {
				appendN(t, b, data, 5)
				commit(t, b)
				if err := b.Ack(1, 2); err != nil {
					t.Fatal(err)
				}
				appendN(t, b, data, 2)
				commit(t, b)
			},
			wantPending: seqRange(3, 7), wantBytes: 0,
		},
		{
			name: "max age on disk", maxAge: time.Hour,
			run: func(t *testing.T, b *Buffer, clk *fakeClock) {
				appendN(t, b, data, 3)
				commit(t, b)
				clk.Add(61 * time.Minute)
				appendN(t, b, data, 2)
				commit(t, b)
			},
			wantPending: seqRange(4, 5), wantAge: 3,
		},
		{
			name: "max age in tail", maxAge: time.Hour,
			run: func(t *testing.T, b *Buffer, clk *fakeClock) {
				appendN(t, b, data, 3)
				clk.Add(61 * time.Minute)
				appendN(t, b, data, 1)
				commit(t, b)
			},
			wantPending: []uint64{4}, wantAge: 3,
		},
		{
			name: "max age spares records appended before the clock was set", maxAge: time.Hour,
			run: func(t *testing.T, b *Buffer, clk *fakeClock) {
				clk.Add(-time.Since(time.Unix(0, 0))) // booted without a real-time clock
				appendN(t, b, data, 2)
				commit(t, b)
				appendN(t, b, data, 1)
				clk.Add(time.Since(time.Unix(0, 0))) // NTP sync
				commit(t, b)
			},
			wantPending: seqRange(1, 3),
		},
		{
			name: "max age not reached", maxAge: time.Hour,
			run: func(t *testing.T, b *Buffer, clk *fakeClock) {
				appendN(t, b, data, 3)
				commit(t, b)
				clk.Add(59 * time.Minute)
				commit(t, b)
			},
			wantPending: seqRange(1, 3),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			opts := testOptions(t)
			opts.Now = clk.Now
			opts.MaxBytes = tt.maxBytes
			opts.MaxAge = tt.maxAge
			b, _ := openTest(t, opts)
			tt.run(t, b, clk)
			got, err := b.Oldest(0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seqsOf(got), tt.wantPending) {
				t.Errorf("pending %v, want %v", seqsOf(got), tt.wantPending)
			}
			st := b.Stats()
			if st.DroppedMaxBytes != tt.wantBytes || st.DroppedMaxAge != tt.wantAge {
				t.Errorf("dropped max_bytes=%d max_age=%d, want %d and %d", st.DroppedMaxBytes, st.DroppedMaxAge, tt.wantBytes, tt.wantAge)
			}
			if st.Pending != len(tt.wantPending) || st.PendingBytes != int64(len(tt.wantPending)*rec) {
				t.Errorf("Stats pending %d / %d B, want %d / %d B", st.Pending, st.PendingBytes, len(tt.wantPending), len(tt.wantPending)*rec)
			}
			if len(got) > 0 && !st.OldestAppended.Equal(got[0].Appended) {
				t.Errorf("OldestAppended %v, want %v", st.OldestAppended, got[0].Appended)
			}
		})
	}
}

func appendN(t testing.TB, b *Buffer, f func(uint64) ([]byte, error), n int) {
	t.Helper()
	for range n {
		if _, err := b.Append(b.now(), f); err != nil {
			t.Fatal(err)
		}
	}
}

func commit(t testing.TB, b *Buffer) {
	t.Helper()
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

// captureHandler counts log records by message.
type captureHandler struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs[r.Message]++
	h.mu.Unlock()
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }
func (h *captureHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}

func TestDropLogRateLimited(t *testing.T) {
	const msg = "buffer full: dropped oldest records"
	h := &captureHandler{msgs: map[string]int{}}
	clk := newFakeClock()
	opts := testOptions(t)
	opts.Log = slog.New(h)
	opts.Now = clk.Now
	opts.MaxBytes = 1
	b, _ := openTest(t, opts)
	for range 5 {
		mustAppend(t, b, "aa")
		mustAppend(t, b, "bb")
		commit(t, b)
		clk.Add(time.Second)
	}
	if n := h.count(msg); n != 1 {
		t.Errorf("%d drop logs within a minute, want 1", n)
	}
	clk.Add(time.Minute)
	mustAppend(t, b, "cc")
	commit(t, b)
	if n := h.count(msg); n != 2 {
		t.Errorf("%d drop logs after a minute, want 2", n)
	}
	if st := b.Stats(); st.DroppedMaxBytes != 11 {
		t.Errorf("DroppedMaxBytes = %d, want 11", st.DroppedMaxBytes)
	}
}

// TestDiskFull: a failing commit keeps the tail (and pending acks) in
// memory, is counted, and the next commit writes it all.
func TestDiskFull(t *testing.T) {
	opts := testOptions(t)
	opts.MaxBytes = 1000
	b, path := openTest(t, opts)
	full := true
	b.commitHook = func(*bolt.Tx) error {
		if full {
			return fmt.Errorf("write: %w", syscall.ENOSPC)
		}
		return nil
	}
	// Committed before the disk filled, then acked while full.
	full = false
	mustAppend(t, b, "early1")
	mustAppend(t, b, "early2")
	commit(t, b)
	full = true
	if err := b.Ack(1); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mustAppend(t, b, "during")
	}
	err := b.Commit()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Commit = %v, want ENOSPC", err)
	}
	st := b.Stats()
	if st.CommitErrors != 1 || st.Tail != 3 || st.Pending != 4 || st.LastCommitErr == "" {
		t.Errorf("after failed commit Stats = %+v", st)
	}
	if got := allSeqs(t, b); !slices.Equal(got, []uint64{2, 3, 4, 5}) {
		t.Errorf("pending while disk full = %v", got)
	}
	full = false
	commit(t, b)
	mustClose(t, b)
	if fileContains(t, path, "1:early1") {
		t.Error("ack taken while the disk was full was lost")
	}
	b2, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if got := allSeqs(t, b2); !slices.Equal(got, []uint64{2, 3, 4, 5}) {
		t.Errorf("after recovery and reopen pending = %v", got)
	}
}

// TestDiskFullBoundedTail: while commits fail the tail is still bounded by MaxBytes.
func TestDiskFullBoundedTail(t *testing.T) {
	opts := testOptions(t)
	opts.MaxBytes = 100
	b, _ := openTest(t, opts)
	b.commitHook = func(*bolt.Tx) error { return syscall.ENOSPC }
	data := func(uint64) ([]byte, error) { return make([]byte, 10), nil }
	for range 5 {
		appendN(t, b, data, 7)
		if err := b.Commit(); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Commit = %v", err)
		}
	}
	st := b.Stats()
	if st.PendingBytes > opts.MaxBytes || st.Tail != 10 || st.DroppedMaxBytes != 25 || st.CommitErrors != 5 {
		t.Errorf("Stats = %+v, want 10 records in the tail, 25 dropped", st)
	}
	b.commitHook = nil
}
