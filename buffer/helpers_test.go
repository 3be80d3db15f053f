package buffer

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// testOptions are fast, quiet defaults for tests.
func testOptions(t testing.TB) Options {
	o := DefaultOptions()
	o.Log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return o
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func quietOptions() Options {
	o := DefaultOptions()
	o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	return o
}

// openTest opens a buffer in a fresh temp dir; on cleanup it closes the
// buffer and checks the file with bbolt's consistency check.
func openTest(t *testing.T, opts Options) (*Buffer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "buffer.db")
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
	return b, path
}

// checkDB runs bbolt's consistency check on a closed database file.
func checkDB(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Errorf("check %s: %v", path, err)
		return
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("check %s: %v", path, err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("check %s: %v", path, err)
	}
}

// updateFile runs fn in a write transaction of the closed buffer file at
// path, through bbolt: a test's way to build an old format or damage.
func updateFile(t testing.TB, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// crash closes the database without the final commit or clean marker, as a
// kill -9 would leave it (minus whatever is in the tail).
func crash(t testing.TB, b *Buffer) {
	t.Helper()
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.dbMu.Lock()
	defer b.dbMu.Unlock()
	if err := b.db.Close(); err != nil {
		t.Fatalf("crash: close db: %v", err)
	}
	b.db = nil
}

// enc returns an encoder that embeds the seq, as the agent does.
func enc(payload string) func(uint64) ([]byte, error) {
	return func(seq uint64) ([]byte, error) {
		return []byte(fmt.Sprintf("%d:%s", seq, payload)), nil
	}
}

func mustAppend(t testing.TB, b *Buffer, payload string) uint64 {
	t.Helper()
	seq, err := b.Append(b.now(), enc(payload))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return seq
}

func seqsOf(rs []Record) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

// checkData verifies each record carries its own seq in its data.
func checkData(t testing.TB, rs []Record) {
	t.Helper()
	for _, r := range rs {
		var s uint64
		if _, err := fmt.Sscanf(string(r.Data), "%d:", &s); err != nil || s != r.Seq {
			t.Errorf("record seq %d has data %q", r.Seq, r.Data)
		}
	}
}

func allSeqs(t testing.TB, b *Buffer) []uint64 {
	t.Helper()
	rs, err := b.Oldest(0, 1<<30)
	if err != nil {
		t.Fatalf("Oldest: %v", err)
	}
	checkData(t, rs)
	return seqsOf(rs)
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func fileContains(t testing.TB, path, s string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(s))
}

// openBlock opens a buffer with SeqBlock block in a fresh temp dir, for tests that stop it themselves (crash,
// close, reopen) and check the file in between.
func openBlock(t *testing.T, block uint64) (*Buffer, string, Options) {
	t.Helper()
	opts := testOptions(t)
	opts.SeqBlock = block
	path := filepath.Join(t.TempDir(), "buffer.db")
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b, path, opts
}

// holdCommit makes b's next commit wait inside its transaction: inCommit closes when it gets there, and it
// goes on when the caller closes release. Later commits pass.
func holdCommit(b *Buffer) (inCommit <-chan struct{}, release chan<- struct{}) {
	in, rel := make(chan struct{}), make(chan struct{})
	b.commitHook = func(*bolt.Tx) error {
		select {
		case <-in:
		default:
			close(in)
			<-rel
		}
		return nil
	}
	return in, rel
}
