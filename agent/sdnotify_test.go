package main

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/buffer"
	"github.com/fleetedge/gps-agent/nmea"
	"github.com/fleetedge/gps-agent/uplink"
	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// listenNotify is a systemd notify socket, named to the agents the test starts (NOTIFY_SOCKET). expect waits up
// to 30 s for a message containing what, and returns it.
func listenNotify(t *testing.T) (expect func(agent *agentProc, what string) string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", sock)
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return func(agent *agentProc, what string) string {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed before %s", what)
				}
				if strings.Contains(m, what) {
					return m
				}
			case <-deadline:
				t.Fatalf("no %s from the agent in 30 s; output:\n%s", what, agent.stderr.String())
			}
		}
	}
}

// The daemon tells systemd it is ready, feeds the watchdog while fixes flow, and says when it stops.
func TestSystemdNotify(t *testing.T) {
	notified := listenNotify(t)
	const stream = "notify"
	k := uplinktest.StartKinesisMock(t, stream, 1)
	f := newFeeder(t, 10)
	t.Setenv("WATCHDOG_USEC", "400000") // 0.4 s: fed every 0.2 s
	agent := startAgent(t, "run", "--config", writeConfig(t, f.path, k.Endpoint, stream))
	f.start()
	expect := func(what string) string { t.Helper(); return notified(agent, what) }
	expect("READY=1")
	for range 3 {
		if m := expect("WATCHDOG=1"); !strings.Contains(m, "STATUS=") || !strings.Contains(m, "fixes sent") {
			t.Errorf("watchdog message without a status line: %q", m)
		}
	}
	f.pause()
	agent.stop(t)
	expect("STOPPING=1")
}

// A receiver loop that shows no step for longer than rxStuckAfter is reported stuck; a waiting one is not. An
// unplugged receiver is waiting (its loop keeps trying to reopen the device), not stuck: restarting the agent for
// it would only hold up the backlog. The uplink's side is in health_test.go.
func TestHealthCheck(t *testing.T) {
	buf, err := buffer.Open(filepath.Join(t.TempDir(), "b.db"), buffer.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	t0 := time.Now()
	p := &pipeline{
		started:    t0,
		rxCounters: new(nmea.Counters),
		rx:         &nmea.Receiver{Device: filepath.Join(t.TempDir(), "unplugged"), Baud: 9600, Log: slog.New(slog.DiscardHandler)},
		buf:        buf,
		up:         uplink.New(uplink.Config{Stream: "s", PartitionKey: "k"}, nil, queue{buf}),
	}
	if s := checkHealth(p, t0); s != "" {
		t.Fatalf("fresh pipeline stuck: %s", s)
	}
	if s := checkHealth(p, t0.Add(rxStuckAfter+time.Second)); !strings.HasPrefix(s, "receiver: its read loop has not moved") {
		t.Fatalf("receiver loop that never ran: %q", s)
	}

	// The receiver's device is missing: Run keeps trying to open it, and that is no reason for a restart.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); p.rx.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for p.rx.Heartbeat().IsZero() {
		time.Sleep(5 * time.Millisecond)
	}
	now := p.rx.Heartbeat()
	if s := checkHealth(p, now); s != "" {
		t.Fatalf("unplugged receiver, empty buffer: stuck %q", s)
	}
}
