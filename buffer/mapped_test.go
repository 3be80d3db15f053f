package buffer

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mappedRSS is how much of the file at path this process holds resident
// through its memory mappings (the Rss lines of /proc/self/smaps), bytes.
func mappedRSS(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	defer f.Close()
	var total int64
	ours := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-"): // a mapping's header line
			ours = len(fields) >= 6 && fields[5] == path
		case ours && len(fields) >= 2 && fields[0] == "Rss:":
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatalf("smaps: %q: %v", sc.Text(), err)
			}
			total += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("smaps: %v", err)
	}
	return total
}

// TestCommitReleasesMappedPages: an explicit Commit drops the pages of the
// file that reads and its transaction mapped, as Run's commits do. A
// backlog committed in groups (the RSS bench's fill, 1,000 fixes a Commit)
// held 15 MiB of the file resident between two of Run's wakes before.
func TestCommitReleasesMappedPages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b, err := Open(path, quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, b)
	const n = 24000 // about 6 MiB: above releaseMinBytes
	for range n {
		if _, err := b.Append(b.now(), fixEncoder); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, b)
	recs, err := b.Oldest(0, n)
	if err != nil || len(recs) != n {
		t.Fatalf("Oldest: %d records, %v", len(recs), err)
	}
	if got := mappedRSS(t, path); got < 2<<20 {
		t.Fatalf("reading %d records mapped only %d KiB of the file: the test cannot tell", n, got>>10)
	}
	if _, err := b.Append(b.now(), fixEncoder); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	if got := mappedRSS(t, path); got > 512<<10 {
		t.Errorf("after Commit %d KiB of the file stay resident, want the mapped pages dropped", got>>10)
	}
}

// TestBackgroundCheckDropsPagesAsItWalks: the background check's walk of a
// large file drops the pages it has mapped every tickEvery elements, so it
// never holds more than about a MiB of the file resident. With a tick every
// 65,536 elements it held 16 MiB before each drop (26 MiB of the file at
// the RSS bench's peak after a restart with a million fixes).
func TestBackgroundCheckDropsPagesAsItWalks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	backlogFile(t, path, 140000) // about 36 MiB, two ticks at the old rate
	opts := quietOptions()
	opts.bgCheckFrom = 1
	var most int64
	ticks := 0
	opts.checkTick = func() { // on the check's goroutine, before each drop
		ticks++
		most = max(most, mappedRSS(t, path))
	}
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer mustClose(t, b)
	waitCheck(t, b)
	if ticks == 0 {
		t.Fatal("the check never dropped its pages")
	}
	if most > 12<<20 {
		t.Errorf("the check held up to %d KiB of the file resident between drops (%d drops), want a few MiB at most", most>>10, ticks)
	}
}
