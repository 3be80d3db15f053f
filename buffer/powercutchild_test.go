package buffer

// The child side of TestPowerCuts (powercuts_test.go): the test binary re-executed as a buffer under a power cut.
// It uses no FUSE, so it builds everywhere TestMain does.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

const powerCutChildEnv = "BUFFER_POWERCUT_CHILD" // "SCENARIO|RUN|PATH"

// The scenarios a cut falls in, in turn.
var powerCutScenarios = []string{"record", "drain", "compact", "reserve", "quarantine", "fresh"}

// garbage is what the quarantine scenario writes over the database: damage no cut makes.
var garbage = bytes.Repeat([]byte("damaged by the test, not by a cut. "), 2000)

// powerCutChild runs a buffer the way the agent does in one scenario, reporting on stdout "ready SEQ", "a SEQ"
// after each Append, "k SEQ" before each Ack and "c SEQ" after each commit that wrote records up to SEQ, until
// killed. Records carry their run, so a seq handed out twice shows.
//
//	record, quarantine, fresh: fixes at 10 Hz, every one kept (the stream is down)
//	drain: a backlog acked oldest first, two per fix, down to 50, while 250 B fixes arrive at 200 Hz (ten a
//	commit: groups, format 4, rewritten as their records are acked)
//	compact: 250 B records at 100 Hz, acked once 300 are pending, and a compaction whenever it is worth it
//	reserve: 200 Hz with a seq block of 4, so nearly every commit reserves (database, then sidecar)
func powerCutChild(spec string) {
	parts := strings.SplitN(spec, "|", 3)
	scenario, run, path := parts[0], parts[1], parts[2]
	opts := quietOptions()
	opts.CommitInterval = 50 * time.Millisecond
	opts.SeqBlock = 1024
	if scenario == "reserve" {
		opts.SeqBlock = 4
	}
	b, err := Open(path, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	if scenario == "compact" {
		b.compactMin, b.compactEvery = 64<<10, 0
	}
	out := os.Stdout
	var compactions uint64
	b.afterCommit = func(last uint64) {
		if n := b.Stats().Compactions; n > compactions {
			compactions = n
			fmt.Fprintf(out, "m %d\n", n)
		}
		if last > 0 {
			fmt.Fprintf(out, "c %d\n", last)
		}
	}
	if scenario == "compact" { // a drained backlog: a file mostly free pages, compacted at the first tick
		var fill []uint64
		for range 3000 {
			s, err := b.Append(time.Now(), enc("r"+run+strings.Repeat(".", 250)))
			if err != nil {
				fmt.Fprintln(os.Stderr, "child fill:", err)
				os.Exit(3)
			}
			fmt.Fprintf(out, "a %d\nk %d\n", s, s)
			fill = append(fill, s)
		}
		if err := errors.Join(b.Commit(), b.Ack(fill...), b.Commit()); err != nil {
			fmt.Fprintln(os.Stderr, "child fill:", err)
			os.Exit(4)
		}
	}
	go func() { _ = b.Run(context.Background()) }()
	fmt.Fprintf(out, "ready %d\n", b.Stats().NextSeq)
	pad, period, ackAbove := "r"+run, 100*time.Millisecond, -1
	switch scenario {
	case "drain":
		period, ackAbove = 5*time.Millisecond, 50
		pad = "r" + run + strings.Repeat(".", 250)
	case "reserve":
		period = 5 * time.Millisecond
	case "compact":
		ackAbove = 300
		pad, period = "r"+run+strings.Repeat(".", 250), 10*time.Millisecond
	}
	for i := 0; ; i++ {
		s, err := b.Append(time.Now(), enc(pad))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child append:", err)
			os.Exit(3)
		}
		fmt.Fprintf(out, "a %d\n", s)
		// Acks lag, as the uplink's do, so what is acked was committed: commits delete, the file has free
		// pages, and the backlog a previous run left drains.
		if ackAbove >= 0 && b.Stats().Pending > ackAbove {
			rs, _ := b.Oldest(0, 2)
			for _, r := range rs {
				fmt.Fprintf(out, "k %d\n", r.Seq)
				_ = b.Ack(r.Seq)
			}
		}
		time.Sleep(period)
	}
}
