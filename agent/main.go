package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// version and commit are set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// command is one subcommand of the CLI.
type command struct {
	summary string
	usage   string // arguments after the command name
	example string
	run     func(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"run": {
			summary: "run the daemon: receiver -> buffer -> Kinesis",
			usage:   "--config FILE",
			example: "gps-agent run --config /etc/gps-agent/config.toml",
			run:     runCmd,
		},
		"decode": {
			summary: "decode NMEA from a file or stdin into schema-v2 records, one JSON per line",
			usage:   "[--truck-id ID] [--fix-rollover] [FILE|-]",
			example: "gps-agent decode --truck-id TRK-7 capture.nmea > fixes.jsonl",
			run:     decodeCmd,
		},
		"simulate": {
			summary: "write realistic NMEA of a moving truck to a pseudo-terminal, a file or stdout",
			usage:   "[--rate HZ] [--baud N] [--link PATH] [--out FILE|-] [--count N] [--seed N] [--replay LOG [--speed X]]",
			example: "gps-agent simulate --link /tmp/gps0    # then receiver.device = \"/tmp/gps0\"",
			run:     simulateCmd,
		},
		"status": {
			summary: "show the receiver, buffer, uplink and clock: from the running daemon, or its database",
			usage:   "[--config FILE] [--db FILE] [--json]",
			example: "gps-agent status            # oldest unsent fix and last success tell whether fixes reach Kinesis",
			run:     statusCmd,
		},
		"fixes": {
			summary: "print the buffered fixes as a table, JSON, CSV, GeoJSON (QGIS) or GPX",
			usage:   "[--config FILE] [--db FILE] [--format table|json|csv|geojson|gpx] [--since T] [--until T] [--limit N]",
			example: "gps-agent fixes --since 2h --format gpx > truck.gpx\n  gps-agent fixes --db ./buffer.db --format geojson > backlog.geojson",
			run:     fixesCmd,
		},
		"ports": {
			summary: "list serial ports with USB vendor/product, serial number and name; --probe finds NMEA and its baud",
			usage:   "[--probe] [--listen D] [--rates LIST] [--json] [DEVICE...]",
			example: "gps-agent ports --probe     # stop the daemon first: it holds its port",
			run:     portsCmd,
		},
		"check": {
			summary: "check config, receiver, clock, buffer directory, credentials and stream: one PASS/WARN/FAIL per line",
			usage:   "[--config FILE] [--json] [--listen D]",
			example: "sudo -u gps-agent gps-agent check --config /etc/gps-agent/config.toml",
			run:     checkCmd,
		},
		"config": {
			summary: "check the config is complete and valid: exit 0; 1 while truck_id is unset; 255 on an error",
			usage:   "check [--config FILE]",
			example: "gps-agent config check --config /etc/gps-agent/config.toml    # systemd's ExecCondition= asks this",
			run:     configCmd,
		},
		"version": {
			summary: "print the version",
			run: func(_ context.Context, _ *flag.FlagSet, _ []string, stdout, _ io.Writer) error {
				fmt.Fprintf(stdout, "gps-agent %s (commit %s)\n", version, commit)
				return nil
			},
		},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli runs one command line and returns the exit status.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		topUsage(stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	name := args[0]
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(stderr, "gps-agent: unknown command %q\n", name)
		topUsage(stderr, cmds)
		return 2
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: gps-agent %s %s\n\n%s\n", name, cmd.usage, cmd.summary)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(fs.Output(), "\nflags:")
			fs.PrintDefaults()
		}
		if cmd.example != "" {
			fmt.Fprintf(fs.Output(), "\nexample:\n  %s\n", cmd.example)
		}
	}
	err := cmd.run(ctx, fs, args[1:], stdout, stderr)
	var exit *exitError
	switch {
	case errors.As(err, &exit):
		return exit.code
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "gps-agent %s: %v\n", name, err)
		return 1
	}
}

func topUsage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "gps-agent: GPS receiver -> durable buffer -> AWS Kinesis, for truck gateways")
	fmt.Fprintln(w, "\nusage: gps-agent COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'gps-agent COMMAND --help' for a command's flags and an example.")
}

// defaultConfig is where the package installs the configuration.
const defaultConfig = "/etc/gps-agent/config.toml"

// configFlag is the --config flag every command that reads the configuration takes.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", defaultConfig, "configuration file (TOML)")
}

// dbFlag is the --db flag of the commands that can read a buffer database copied off a gateway.
func dbFlag(fs *flag.FlagSet) *string {
	return fs.String("db", "", "read this buffer database (for example one copied off a gateway) instead of asking the daemon")
}

// parseFlags parses a command's flags, reporting a usage error on stderr.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
}

// newLogger logs to w (stderr: journald adds the time when the agent runs under systemd), as text or JSON. level
// and format are read in any case, as Validate accepts them.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: logLevels[strings.ToLower(level)]}
	if strings.EqualFold(format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
