package buffer

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// makeDB writes a real buffer file with n records of ~100 B, some acked so
// the file has free pages too. It returns the last seq and the page size.
func makeDB(t testing.TB, path string, n int) (last uint64, pageSize int) {
	t.Helper()
	b, err := Open(path, quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("p", 96)
	for i := range n {
		last = mustAppend(t, b, pad)
		if i%100 == 99 {
			commit(t, b)
		}
	}
	commit(t, b)
	for s := uint64(1); s <= last; s += 3 {
		if err := b.Ack(s); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, b)
	pageSize = b.db.Info().PageSize
	mustClose(t, b)
	return last, pageSize
}

type outcome int

const (
	healthy outcome = iota // opened in place
	moved                  // moved aside
	either                 // depends on which page was hit
	anew                   // what a power cut leaves of a file being created: started anew, not moved aside
)

// TestDamagedFiles opens real damaged files: Open must never panic, must move
// the file aside when it cannot be trusted, and the seq must continue past
// everything handed out before.
func TestDamagedFiles(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string, pageSize int)
		want   outcome
	}{
		{name: "intact", damage: func(*testing.T, string, int) {}, want: healthy},
		{name: "zero length", damage: truncateTo(func(int64, int) int64 { return 0 }), want: anew},
		{name: "truncated to one page", damage: truncateTo(func(_ int64, ps int) int64 { return int64(ps) }), want: moved},
		{name: "truncated to meta pages", damage: truncateTo(func(_ int64, ps int) int64 { return 2 * int64(ps) }), want: moved},
		{name: "truncated to three pages", damage: truncateTo(func(_ int64, ps int) int64 { return 3 * int64(ps) }), want: moved},
		{name: "truncated at half, page boundary", damage: truncateTo(func(s int64, ps int) int64 { return s / 2 / int64(ps) * int64(ps) }), want: moved},
		{name: "truncated by last page", damage: truncateTo(func(s int64, ps int) int64 { return s - int64(ps) }), want: either},
		{name: "truncated mid page", damage: truncateTo(func(s int64, ps int) int64 { return s/2/int64(ps)*int64(ps) + 123 }), want: moved},
		{name: "short garbage", damage: writeFile([]byte("garbage!")), want: moved},
		{name: "page of garbage", damage: writeFile(randBytes(1, 4096)), want: moved},
		{name: "64 KiB of garbage", damage: writeFile(randBytes(2, 64<<10)), want: moved},
		{name: "both meta pages overwritten", damage: overwritePages(0, 1), want: moved},
		{name: "first meta page overwritten", damage: overwritePages(0), want: healthy},
		{name: "page 2 overwritten", damage: overwritePages(2), want: either},
		{name: "page 3 overwritten", damage: overwritePages(3), want: either},
		{name: "page 4 overwritten", damage: overwritePages(4), want: either},
		{name: "page 5 overwritten", damage: overwritePages(5), want: either},
		{name: "page 7 overwritten", damage: overwritePages(7), want: either},
		{name: "random pages overwritten", damage: overwriteRandomPages(3, 5), want: either},
		{name: "more random pages overwritten", damage: overwriteRandomPages(4, 12), want: either},
		{name: "zeroed page 3", damage: zeroPage(3), want: either},
		{name: "newer format version", damage: setFormat(formatVersion + 1), want: moved},
		{name: "undecodable group", damage: breakGroup, want: moved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "buffer.db")
			last, ps := makeDB(t, path, 700)
			tt.damage(t, path, ps)

			opts := testOptions(t)
			b, err := Open(path, opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			st := b.Stats()
			aside, _ := filepath.Glob(path + ".corrupt-*")
			switch {
			case tt.want == healthy && (st.Quarantined != 0 || len(aside) != 0):
				t.Errorf("healthy file moved aside: Quarantined=%d files=%v", st.Quarantined, aside)
			case tt.want == moved && (st.Quarantined != 1 || len(aside) != 1):
				t.Errorf("damaged file not moved aside: Quarantined=%d files=%v", st.Quarantined, aside)
			case tt.want == anew && (st.Quarantined != 0 || len(aside) != 0 || st.Unfinished != 1):
				t.Errorf("unfinished creation: Quarantined=%d files=%v Unfinished=%d, want 0, none, 1", st.Quarantined, aside, st.Unfinished)
			case tt.want != anew && st.Unfinished != 0:
				t.Errorf("a file that held records was taken for an unfinished creation")
			}
			if st.Quarantined == 0 && tt.want != healthy {
				t.Logf("opened in place: %d pending, %d invalid deleted", st.Pending, st.DroppedInvalid)
			}
			if st.NextSeq <= last {
				t.Errorf("NextSeq %d after damage, but %d was handed out", st.NextSeq, last)
			}
			// The buffer works: reads, appends, commits, closes cleanly.
			if _, err := b.Oldest(0, 1000); err != nil {
				t.Errorf("Oldest: %v", err)
			}
			mustAppend(t, b, "after")
			commit(t, b)
			mustClose(t, b)
			checkDB(t, path)
		})
	}
}

// breakGroup cuts the first group's value short in the middle of a record,
// through bbolt: a group that does not decode.
func breakGroup(t *testing.T, path string, _ int) {
	updateFile(t, path, func(tx *bolt.Tx) error {
		gs := tx.Bucket(bucketGroups)
		gk, _ := gs.Cursor().First()
		if gk == nil {
			return errors.New("no group to break")
		}
		g := gs.Bucket(gk)
		v := g.Get(groupValueKey)
		return g.Put(groupValueKey, append([]byte(nil), v[:len(v)/2]...))
	})
}

func truncateTo(size func(size int64, pageSize int) int64) func(*testing.T, string, int) {
	return func(t *testing.T, path string, ps int) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, size(fi.Size(), ps)); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(data []byte) func(*testing.T, string, int) {
	return func(t *testing.T, path string, _ int) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writePage(t *testing.T, path string, ps int, id int64, data []byte) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data[:ps], id*int64(ps)); err != nil {
		t.Fatal(err)
	}
}

func overwritePages(ids ...int64) func(*testing.T, string, int) {
	return func(t *testing.T, path string, ps int) {
		for _, id := range ids {
			writePage(t, path, ps, id, randBytes(uint64(id)+100, ps))
		}
	}
}

func zeroPage(id int64) func(*testing.T, string, int) {
	return func(t *testing.T, path string, ps int) {
		writePage(t, path, ps, id, make([]byte, ps))
	}
}

func overwriteRandomPages(seed uint64, n int) func(*testing.T, string, int) {
	return func(t *testing.T, path string, ps int) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		pages := fi.Size() / int64(ps)
		r := rand.New(rand.NewPCG(seed, 0))
		for i := range n {
			id := 2 + r.Int64N(pages-2) // keep the meta pages: those are the cases above
			writePage(t, path, ps, id, randBytes(seed*1000+uint64(i), ps))
		}
	}
}

func setFormat(v uint64) func(*testing.T, string, int) {
	return func(t *testing.T, path string, _ int) {
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, u64(v)) })
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestLockedFile: a file locked by another opener is an error after the
// lock timeout, not a hang, and is not moved aside.
func TestLockedFile(t *testing.T) {
	_, path := openTest(t, testOptions(t))
	start := time.Now()
	_, err := Open(path, testOptions(t))
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second Open = %v, want a lock error", err)
	}
	if d := time.Since(start); d > lockTimeout+5*time.Second {
		t.Errorf("second Open took %v", d)
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 0 {
		t.Errorf("locked file moved aside: %v", aside)
	}
}

// TestUnreadableDirIsNotCorruption: environment errors are returned, the
// file is left alone.
func TestUnreadableFileIsNotCorruption(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores file permissions")
	}
	path := filepath.Join(t.TempDir(), "buffer.db")
	makeDB(t, path, 10)
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, testOptions(t)); err == nil || errors.Is(err, errCorrupt) {
		t.Errorf("Open of unreadable file = %v", err)
	}
	if aside, _ := filepath.Glob(path + ".corrupt-*"); len(aside) != 0 {
		t.Errorf("unreadable file moved aside: %v", aside)
	}
}

// FuzzOpen: whatever bytes are in the file, Open never panics, and a buffer
// it returns works and leaves a consistent file.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.db")
	makeDB(f, path, 300)
	valid, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(valid[:8192])
	f.Add([]byte{})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "buffer.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := Open(path, quietOptions())
		if err != nil {
			t.Fatalf("Open: %v", err) // a damaged file is moved aside, never an error
		}
		if _, err := b.Newest(10); err != nil {
			t.Errorf("Newest: %v", err)
		}
		mustAppend(t, b, "x")
		commit(t, b)
		mustClose(t, b)
		checkDB(t, path)
	})
}
