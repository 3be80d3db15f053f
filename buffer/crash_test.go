package buffer

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "BUFFER_CRASH_CHILD_DB"

// TestMain lets the test binary act as the crash child.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if path := os.Getenv(compactChildEnv); path != "" {
		compactChild(path)
		return
	}
	if spec := os.Getenv(powerCutChildEnv); spec != "" {
		powerCutChild(spec)
		return
	}
	os.Exit(m.Run())
}

// crashChild appends continuously with a short commit interval and reports
// on stdout, one write per line: "a SEQ" after each Append returns and
// "c SEQ" after each commit that wrote records up to SEQ. It runs until killed.
func crashChild(path string) {
	if p, ok := strings.CutPrefix(path, windowChildPrefix); ok {
		windowChild(p)
		return
	}
	runChild(openChild(path, 64)) // several reservations per round
}

// openChild opens the buffer for a child process with a short commit interval, or exits.
func openChild(path string, seqBlock uint64) *Buffer {
	opts := quietOptions()
	opts.CommitInterval = 3 * time.Millisecond
	opts.SeqBlock = seqBlock
	b, err := Open(path, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	return b
}

// runChild starts the commit loop, reporting "c SEQ" after each commit that wrote records up to SEQ, then
// appends until the process is killed, reporting "a SEQ" after each Append returns.
func runChild(b *Buffer) {
	out := os.Stdout
	b.afterCommit = func(last uint64) {
		if last > 0 {
			fmt.Fprintf(out, "c %d\n", last)
		}
	}
	go func() { _ = b.Run(context.Background()) }()
	fmt.Fprintf(out, "ready %d\n", b.Stats().NextSeq)
	for {
		s, err := b.Append(b.now(), enc("crash-test-payload-of-some-length"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child append:", err)
			os.Exit(3)
		}
		fmt.Fprintf(out, "a %d\n", s)
		if s%7 == 0 {
			time.Sleep(50 * time.Microsecond) // let commits interleave with appends
		}
	}
}

// TestCrashKill9 kills a child that appends continuously with SIGKILL, several
// times over the same file: every seq committed before the last completed
// commit must be there, and the next seq must be past every seq handed out.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "buffer.db")
	var wantPresent []uint64
	var maxHanded uint64
	for round := range 4 {
		lastCommit, handed := runCrashChild(t, path, time.Duration(50+round*40)*time.Millisecond)
		if lastCommit == 0 {
			t.Fatalf("round %d: child never reported a commit", round)
		}
		for _, s := range handed {
			if s <= maxHanded {
				t.Fatalf("round %d: seq %d handed out again (max before %d)", round, s, maxHanded)
			}
		}
		first := handed[0]
		maxHanded = handed[len(handed)-1]
		wantPresent = append(wantPresent, seqRange(first, lastCommit)...)

		b, err := Open(path, testOptions(t))
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		st := b.Stats()
		got := allSeqs(t, b)
		if st.Quarantined != 0 {
			t.Errorf("round %d: file moved aside after kill -9", round)
		}
		if st.NextSeq <= maxHanded {
			t.Errorf("round %d: NextSeq %d, but the child handed out %d", round, st.NextSeq, maxHanded)
		}
		if st.SeqGap == 0 {
			t.Errorf("round %d: no seq gap recorded after an unclean stop", round)
		}
		for _, s := range wantPresent {
			if _, ok := slices.BinarySearch(got, s); !ok {
				t.Fatalf("round %d: seq %d committed (last commit reported %d) but missing; have %d records", round, s, lastCommit, len(got))
			}
		}
		t.Logf("round %d: handed %d..%d, last commit %d, %d records pending, next %d", round, first, maxHanded, lastCommit, len(got), st.NextSeq)
		mustClose(t, b)
		checkDB(t, path)
		// The clean Close above continues at NextSeq: nothing to add to maxHanded.
		maxHanded = max(maxHanded, st.NextSeq-1)
	}
}

// runCrashChild runs the child for about d, kills it with SIGKILL and returns
// the last committed seq it reported and every seq it reported handing out.
func runCrashChild(t *testing.T, path string, d time.Duration) (lastCommit uint64, handed []uint64) {
	t.Helper()
	var deadline time.Time
	for _, ev := range runKilledChild(t, crashChildEnv, path, func(ev childEvent) bool {
		if ev.kind == "ready" && deadline.IsZero() {
			deadline = time.Now().Add(d)
		}
		return !deadline.IsZero() && time.Now().After(deadline)
	}) {
		switch ev.kind {
		case "a":
			handed = append(handed, ev.n)
		case "c":
			lastCommit = ev.n
		}
	}
	if len(handed) == 0 {
		t.Fatal("child handed out nothing")
	}
	return lastCommit, handed
}

// childEvent is one line a child reports: a kind and a number.
type childEvent struct {
	kind string
	n    uint64
}

// runKilledChild re-execs the test binary as a child (env=path selects what it does), kills it with SIGKILL
// after the first line kill returns true for, and returns every line it reported. A child that outlives 30 s is
// killed too.
func runKilledChild(t *testing.T, env, path string, kill func(childEvent) bool) []childEvent {
	t.Helper()
	if q := os.Getenv("GPS_AGENT_TEST_EMULATED"); q != "" {
		t.Skipf("re-execs the test binary, which %s cannot without binfmt_misc; runs on amd64", q)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env+"="+path)
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

	var events []childEvent
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		kind, num, _ := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil && num != "" {
			continue // a torn last line
		}
		ev := childEvent{kind, n}
		events = append(events, ev)
		if !killed && kill(ev) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed = true
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v, stderr: %s", err, stderr.String())
	}
	return events
}
