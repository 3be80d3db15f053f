package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

// decodeCmd prints one schema-v2 record per fix found in an NMEA capture. Lines it cannot use are counted and
// reported on stderr at the end; they are never fatal. A capture keeps its dates: one older than this build is
// not a receiver with the week-number rollover bug unless the user says so (--fix-rollover), unlike in the daemon.
func decodeCmd(_ context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	truckID := fs.String("truck-id", "decode", "truck_id to put in the records")
	fixRollover := fs.Bool("fix-rollover", false, "move dates before this build's date forward by whole 1024-week GPS eras, as the daemon does (a receiver with the week-number rollover bug)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return errUsage
	}
	if !truckIDPattern.MatchString(*truckID) {
		return fmt.Errorf("--truck-id %q: use 1 to 256 letters, digits or ._:-", *truckID)
	}
	in, name := io.Reader(os.Stdin), "stdin"
	if p := fs.Arg(0); p != "" && p != "-" {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("open input: %w", err)
		}
		defer f.Close()
		in, name = f, p
	}
	out := bufio.NewWriter(stdout)
	enc := newRecordEncoder(*truckID)
	var (
		seq  uint64
		buf  []byte
		roll = weekRollover{notBefore: buildDate()}
	)
	stats, err := nmea.Decode(in, func(f nmea.Fix) {
		if *fixRollover {
			f = roll.fix(f)
		}
		seq++
		buf = enc.encode(buf[:0], seq, f, time.Time{}) // a capture: no gateway receive time
		buf = append(buf, '\n')
		out.Write(buf)
	})
	if ferr := out.Flush(); ferr != nil && err == nil {
		err = fmt.Errorf("write records: %w", ferr)
	}
	fmt.Fprintf(stderr, "decode: %s: %d fixes; %s\n", name, seq, stats)
	if *fixRollover {
		fmt.Fprintf(stderr, "decode: %d dates moved forward by whole 1024-week eras (before %s)\n", roll.fixed.Load(),
			roll.notBefore.Format(time.DateOnly))
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}
