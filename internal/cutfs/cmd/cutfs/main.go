//go:build linux && (amd64 || arm64)

// Command cutfs serves the power-cut filesystem of package cutfs, for tests:
//
//	cutfs --backing DIR --mount DIR --control SOCKET [--read-rate BYTES_PER_S]
//
// It prints "ready" once mounted and exits after a cut or a stop (see
// cutfs.Serve for the commands), or a stop on SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/fleetedge/gps-agent/internal/cutfs"
)

func main() {
	var cfg cutfs.Config
	flag.StringVar(&cfg.Backing, "backing", "", "the disk: a directory")
	flag.StringVar(&cfg.Mount, "mount", "", "mount point")
	flag.StringVar(&cfg.Control, "control", "", "control socket path")
	flag.Int64Var(&cfg.ReadRate, "read-rate", 0, "throttle reads to this many bytes/s (0: none)")
	flag.Parse()
	if cfg.Backing == "" || cfg.Mount == "" || cfg.Control == "" {
		fmt.Fprintln(os.Stderr, "cutfs: --backing, --mount and --control are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := cutfs.Serve(ctx, cfg, func() { fmt.Println("ready") })
	if err != nil {
		fmt.Fprintln(os.Stderr, "cutfs:", err)
		os.Exit(1)
	}
}
