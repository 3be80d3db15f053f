package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

// simulateCmd writes the NMEA of a simulated truck: to a new pseudo-terminal by default (the agent opens its
// path as if it were a USB receiver), or to a file or stdout.
func simulateCmd(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	var sim nmea.Simulator
	fs.Float64Var(&sim.Rate, "rate", 1, "epochs per second (a 10 Hz receiver: --rate 10)")
	fs.Int64Var(&sim.Seed, "seed", 1, "seed of the simulated route")
	link := fs.String("link", "", "make a stable symlink to the pseudo-terminal at this path")
	out := fs.String("out", "", "write to this file, or - for stdout, instead of a pseudo-terminal")
	count := fs.Int("count", 0, "stop after this many epochs; with --out they are written at once, without pacing")
	fs.IntVar(&sim.Baud, "baud", 0, "on a pseudo-terminal, send NMEA only while the reader's line speed is this (else garbage, as a receiver at another rate would)")
	replay := fs.String("replay", "", "play this recorded NMEA log at its recorded pace instead of a simulated drive")
	speed := fs.Float64("speed", 1, "with --replay, play this many times faster")
	modem := fs.String("modem", "", "simulate a cellular modem (Quectel-like) instead: its AT and NMEA ports as DIR/at and DIR/nmea; NMEA only after AT+QGPS=1")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modem != "" {
		if fs.NArg() > 0 || *out != "" || *link != "" || *replay != "" || sim.Rate <= 0 || sim.Rate > 50 {
			fs.Usage()
			return errUsage
		}
		return modemCmd(ctx, *modem, sim, stdout)
	}
	if fs.NArg() > 0 || sim.Rate <= 0 || sim.Rate > 50 || *count < 0 || (*out != "" && *link != "") || sim.Baud < 0 || *speed <= 0 {
		fs.Usage()
		return errUsage
	}
	if *replay != "" {
		return replayCmd(ctx, *replay, *speed, *out, *link, stdout)
	}

	if *out != "" {
		w := stdout
		if *out != "-" {
			f, err := os.Create(*out)
			if err != nil {
				return fmt.Errorf("create output: %w", err)
			}
			defer f.Close()
			w = f
		}
		bw := bufio.NewWriter(w)
		if *count > 0 {
			for i := range *count {
				if _, err := bw.Write(sim.Epoch(i)); err != nil {
					return fmt.Errorf("write nmea: %w", err)
				}
			}
			return flushed(bw)
		}
		return runSim(ctx, &sim, &flushWriter{bw}, 0)
	}

	master, path, closePTY, err := nmea.OpenPTY(*link)
	if err != nil {
		return fmt.Errorf("open pseudo-terminal: %w", err)
	}
	defer closePTY()
	fmt.Fprintf(stdout, "simulating a receiver at %g Hz on %s\n", sim.Rate, ptyName(path, *link))
	return runSim(ctx, &sim, master, *count)
}

// runSim runs the simulator until ctx ends or, with count > 0, for count epochs' time.
func runSim(ctx context.Context, sim *nmea.Simulator, w io.Writer, count int) error {
	if count > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, epochsDuration(sim.Rate, count))
		defer cancel()
	}
	err := sim.Run(ctx, w)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// flushWriter flushes after every write, so paced output reaches a pipe as each epoch is written.
type flushWriter struct{ w *bufio.Writer }

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

func flushed(w *bufio.Writer) error {
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write nmea: %w", err)
	}
	return nil
}

func epochsDuration(rate float64, count int) time.Duration {
	return time.Duration(float64(count) / rate * float64(time.Second))
}

// replayCmd plays a recorded log, like gpsd's gpsfake, to a new pseudo-terminal or to --out.
func replayCmd(ctx context.Context, log string, speed float64, out, link string, stdout io.Writer) error {
	in, err := os.Open(log)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer in.Close()
	var w io.Writer = stdout
	switch {
	case out != "" && out != "-":
		f, err := os.Create(out)
		if err != nil {
			return fmt.Errorf("create output: %w", err)
		}
		defer f.Close()
		w = f
	case out == "":
		master, path, closePTY, err := nmea.OpenPTY(link)
		if err != nil {
			return fmt.Errorf("open pseudo-terminal: %w", err)
		}
		defer closePTY()
		fmt.Fprintf(stdout, "replaying %s at %gx on %s\n", log, speed, ptyName(path, link))
		w = master
	}
	err = nmea.Replay(ctx, in, w, speed)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// modemCmd runs a simulated modem until ctx ends.
func modemCmd(ctx context.Context, dir string, sim nmea.Simulator, stdout io.Writer) error {
	m := &nmea.SimModem{Dir: dir, Sim: sim}
	ready := m.Ready()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case <-ready:
		fmt.Fprintf(stdout, "simulating a modem: AT port %s, NMEA port %s (NMEA at %g Hz after AT+QGPS=1)\n", m.ATPath(),
			m.NMEAPath(), sim.Rate)
	case err := <-done:
		return err
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func ptyName(path, link string) string {
	if link == "" {
		return path
	}
	return link + " (-> " + path + ")"
}
