package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Exit statuses of `gps-agent config check`, chosen for systemd's ExecCondition= (systemd.service(5)): 1 to 254
// skip the start without marking the unit failed, 255 fails it. The deb postinst and the OpenWrt init script read
// them the same way.
const (
	configUnset   = 1   // not filled in yet (truck_id unset, or no file): the service stays off, quietly
	configInvalid = 255 // filled in but wrong: the service fails, loudly, until it is fixed
)

// configCmd is `gps-agent config check`: is the config complete and valid? The service manager asks it before
// each start, instead of matching the file with a pattern (which missed single-quoted strings).
func configCmd(_ context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	var sub string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	path := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if sub == "" && fs.NArg() > 0 {
		sub = fs.Arg(0)
		if err := parseFlags(fs, fs.Args()[1:]); err != nil {
			return err
		}
	}
	if sub != "check" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	cfg, code, err := checkConfig(*path)
	switch code {
	case 0:
		fmt.Fprintf(stdout, "%s: complete: truck %s, receiver %s, stream %s in %s\n", *path, cfg.TruckID,
			receiverName(cfg.Receiver), cfg.Kinesis.Stream, cfg.Kinesis.Region)
		return nil
	case configUnset:
		what := "truck_id is not set (in the file, or GPS_AGENT_TRUCK_ID)"
		if errors.Is(err, os.ErrNotExist) {
			what = "no config file"
		}
		fmt.Fprintf(stderr, "%v\n%s: %s: the service stays off until it is\n", err, *path, what)
	default:
		fmt.Fprintf(stderr, "%v\n%s: the service fails until this is fixed (gps-agent check explains each key)\n", err, *path)
	}
	return &exitError{code: code}
}

// checkConfig loads the config at path and sorts the outcome: 0 complete and valid, configUnset when it is not
// filled in yet (no file, or no truck_id while the rest parses), configInvalid otherwise.
func checkConfig(path string) (Config, int, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Config{}, configUnset, fmt.Errorf("read config: %w", err)
	case err != nil:
		return Config{}, configInvalid, fmt.Errorf("read config: %w", err)
	}
	cfg, err := decodeConfig(path, data, os.LookupEnv)
	if err != nil {
		return cfg, configInvalid, err
	}
	err = validateAt(path, data, &cfg)
	switch {
	case cfg.TruckID == "":
		return cfg, configUnset, err
	case err != nil:
		return cfg, configInvalid, err
	}
	return cfg, 0, nil
}
