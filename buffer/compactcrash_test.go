package buffer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const compactChildEnv = "BUFFER_COMPACT_CHILD_DB"

// compactChild fills a file and drains most of it (reporting "k SEQ" for each record it keeps), then runs the
// commit loop with compaction on and appends until killed, like crashChild. The compaction's copy stops after its
// first transaction, reporting "copying": the child is killed in the middle of a compaction, with the copy
// stale and the commits going on.
func compactChild(path string) {
	b := openChild(path, 0)
	out := os.Stdout
	var ack []uint64
	for i := range 5000 {
		s, err := b.Append(b.now(), enc(strings.Repeat("z", 200)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child append:", err)
			os.Exit(3)
		}
		if i%1000 == 0 {
			fmt.Fprintf(out, "k %d\n", s)
		} else {
			ack = append(ack, s)
		}
	}
	if err := errors.Join(b.Commit(), b.Ack(ack...), b.Commit()); err != nil {
		fmt.Fprintln(os.Stderr, "child fill:", err)
		os.Exit(4)
	}
	b.compactMin, b.compactEvery = 64<<10, 0
	stalled := false
	b.compactHook = func() {
		if !stalled {
			stalled = true
			fmt.Fprintln(out, "copying")
			select {} // the copy stays in the middle until the kill
		}
	}
	runChild(b)
}

// TestKill9DuringCompaction kills a child with SIGKILL in the middle of a compaction's copy, after commits went
// on during it: every record committed before the kill is there after a reopen (the loss window stayed one
// commit interval), the file is not moved aside, and the next compaction cleans up the stale copy.
func TestKill9DuringCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "buffer.db")
	const commitsWhileCopying = 30
	var copying bool
	var during int
	events := runKilledChild(t, compactChildEnv, path, func(ev childEvent) bool {
		switch {
		case ev.kind == "copying":
			copying = true
		case ev.kind == "c" && copying:
			during++
		}
		return during >= commitsWhileCopying
	})
	var want []uint64
	var firstAppend, lastCommit uint64
	for _, ev := range events {
		switch ev.kind {
		case "k":
			want = append(want, ev.n)
		case "a":
			if firstAppend == 0 {
				firstAppend = ev.n
			}
		case "c":
			lastCommit = ev.n
		}
	}
	if !copying || during < commitsWhileCopying {
		t.Fatalf("%d commits completed while the compaction copied (copy started: %v), want %d: commits wait for the copy",
			during, copying, commitsWhileCopying)
	}
	want = append(want, seqRange(firstAppend, lastCommit)...)

	b, err := Open(path, testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	got := allSeqs(t, b)
	for _, s := range want {
		if _, ok := slices.BinarySearch(got, s); !ok {
			t.Fatalf("seq %d committed before the kill (last commit reported %d) is missing", s, lastCommit)
		}
	}
	if st := b.Stats(); st.Quarantined != 0 {
		t.Errorf("file moved aside after a kill during compaction")
	}
	if _, err := os.Stat(path + ".compact"); err != nil {
		t.Logf("no stale copy left: %v", err)
	}
	b.compactMin = 64 << 10
	if err := b.Ack(got...); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	if ok, err := b.compactIfWorthIt(context.Background()); !ok || err != nil {
		t.Errorf("compaction after the kill = %v, %v; want one", ok, err)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Errorf("stale copy still there after a compaction: %v", err)
	}
	mustClose(t, b)
	checkDB(t, path)
	t.Logf("%d records kept, %d commits during the copy, last commit %d", len(got), during, lastCommit)
}
