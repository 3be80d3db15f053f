// Command linkemu runs the link emulator of package uplinktest as a process,
// for demos and manual tries: a shaped, cuttable link in front of local
// Kinesis.
//
//	go run ./uplink/uplinktest/cmd/linkemu --listen 127.0.0.1:4568 --upstream http://127.0.0.1:4567 --profile lte
//
// It prints "linkemu: listening on URL" once clients can connect. Control
// it with signals (SIGUSR1: black hole on/off; SIGUSR2: refused on/off) or
// lines on stdin: "hole", "refuse", "up", "profile NAME", "meter". Every
// change of state prints one line, and SIGINT or SIGTERM stop it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "linkemu:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("linkemu", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address clients connect to (with --netns, only its port counts)")
	upstream := fs.String("upstream", "", "local Kinesis endpoint, e.g. http://127.0.0.1:4567")
	profile := fs.String("profile", "lte", "link shape: loopback, lte or poor")
	caFile := fs.String("tls-ca", "", "terminate TLS with HTTP/2 and write the CA to trust (AWS_CA_BUNDLE) to this file")
	netns := fs.Bool("netns", false, "listen in a network namespace so that a black hole drops SYNs (root, ip and nft)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := uplinktest.ParseProfile(*profile)
	if err != nil {
		return err
	}
	if *upstream == "" {
		return errors.New("--upstream is required")
	}
	var hosts []string
	cfg := uplinktest.WireConfig{Profile: p}
	first := *listen
	if *netns {
		ns, err := uplinktest.NewNetNS()
		if err != nil {
			return err
		}
		defer ns.Close()
		_, port, _ := net.SplitHostPort(*listen)
		first = net.JoinHostPort(ns.Addr.String(), port)
		cfg.Listen = func(addr string) (net.Listener, error) { return ns.Listen(addr) }
		cfg.Hole = ns.Hole
		hosts = append(hosts, ns.Addr.String())
	}
	if cfg.Listen == nil {
		cfg.Listen = func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	}
	// The first listen takes the address asked for; later ones (after a
	// refused outage) reopen the one the Wire has.
	listenFn := cfg.Listen
	cfg.Listen = func(addr string) (net.Listener, error) {
		if addr == "" {
			addr = first
		}
		return listenFn(addr)
	}
	proxy, err := uplinktest.StartProxy(*upstream, uplinktest.ProxyOptions{CAFile: *caFile, Hosts: hosts})
	if err != nil {
		return err
	}
	defer proxy.Close()
	cfg.Target = strings.TrimPrefix(strings.TrimPrefix(proxy.URL, "https://"), "http://")
	w, err := uplinktest.NewWire(cfg)
	if err != nil {
		return err
	}
	scheme := "http://"
	if *caFile != "" {
		scheme = "https://"
	}
	// Caught before anyone is told to send them: uncaught, they kill.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	cmds := make(chan string)
	go readCommands(ctx, stdin, cmds)
	fmt.Fprintf(out, "linkemu: listening on %s%s, %v\n", scheme, w.Addr, p)
	for {
		var cmd string
		select {
		case err := <-done:
			return err
		case s := <-sigs:
			cmd = map[os.Signal]string{syscall.SIGUSR1: "toggle hole", syscall.SIGUSR2: "toggle refuse"}[s]
		case cmd = <-cmds:
		}
		if err := control(w, cmd, out); err != nil {
			fmt.Fprintln(out, "linkemu:", err)
		}
	}
}

// control carries out one command.
func control(w *uplinktest.Wire, cmd string, out io.Writer) error {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return nil
	}
	toggle := func(o uplinktest.Outage) uplinktest.Outage {
		if w.Outage() == o {
			return uplinktest.NoOutage
		}
		return o
	}
	var next uplinktest.Outage
	switch {
	case f[0] == "meter":
		m := w.Meter()
		fmt.Fprintf(out, "linkemu: %v; %d B up, %d B down, %d connections opened, %d open\n", w.Outage(), m.Up, m.Down, m.Opened, m.Open)
		return nil
	case f[0] == "profile" && len(f) == 2:
		p, err := uplinktest.ParseProfile(f[1])
		if err != nil {
			return err
		}
		w.SetProfile(p)
		fmt.Fprintf(out, "linkemu: profile %v\n", p)
		return nil
	case cmd == "toggle hole":
		next = toggle(uplinktest.BlackHole)
	case cmd == "toggle refuse":
		next = toggle(uplinktest.Refused)
	case f[0] == "hole":
		next = uplinktest.BlackHole
	case f[0] == "refuse":
		next = uplinktest.Refused
	case f[0] == "up":
		next = uplinktest.NoOutage
	default:
		return fmt.Errorf("unknown command %q: hole, refuse, up, profile NAME, meter", cmd)
	}
	if err := w.SetOutage(next); err != nil {
		return err
	}
	fmt.Fprintf(out, "linkemu: link %v\n", next)
	return nil
}

// readCommands passes stdin's lines on until it ends; a process without
// stdin is controlled by signals alone.
func readCommands(ctx context.Context, stdin io.Reader, cmds chan<- string) {
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		select {
		case cmds <- sc.Text():
		case <-ctx.Done():
			return
		}
	}
}
