package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/buffer"
	"github.com/fleetedge/gps-agent/nmea"
	"github.com/fleetedge/gps-agent/uplink"
)

// newTestPipeline is a pipeline whose parts are built but not run: enough for the control socket.
func newTestPipeline(t *testing.T, fixes int) *pipeline {
	t.Helper()
	buf, err := buffer.Open(writeTestBuffer(t, fixes), buffer.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { buf.Close() })
	cfg := DefaultConfig()
	cfg.Receiver.Device = "/dev/gps-test"
	return &pipeline{started: time.Now(), cfg: cfg, rx: &nmea.Receiver{}, rxCounters: new(nmea.Counters),
		filter: newFilter(cfg.Filter), clock: &clockWatch{log: slog.New(slog.DiscardHandler)}, buf: buf,
		up: uplink.New(uplink.Config{Stream: "s", PartitionKey: "TRK"}, nil, queue{buf})}
}

func TestControlSocket(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	path := filepath.Join(t.TempDir(), "run", "agent.sock")
	os.MkdirAll(filepath.Dir(path), 0o750)
	// A socket left by a daemon that was killed: bound, nobody listening any more.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	p := newTestPipeline(t, 7)
	stop, err := p.serveControl(path, log)
	if err != nil {
		t.Fatalf("serveControl over a stale socket: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket %v, %v: want a socket with mode 0660", fi.Mode(), err)
	}
	if _, err := p.serveControl(path, log); err == nil || !strings.Contains(err.Error(), "another gps-agent") {
		t.Errorf("second daemon on the same socket: err %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := daemonStatus(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Daemon != "running" || st.Agent == nil || st.Agent.Receiver.Device != "/dev/gps-test" || st.Buffer.Pending != 7 ||
		st.OldestUnsent == nil || st.OldestUnsent.Seq != 1 || st.Newest == nil || st.Newest.Seq != 7 {
		t.Fatalf("status %+v", st)
	}
	tests := []struct {
		name string
		req  controlRequest
		want int
	}{
		{name: "all", want: 7},
		{name: "limit", req: controlRequest{Limit: 2}, want: 2},
		{name: "since", req: controlRequest{Since: fieldT0.Add(5 * time.Second)}, want: 2},
		{name: "until", req: controlRequest{Until: fieldT0.Add(time.Second)}, want: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			if err := daemonFixes(ctx, path, tc.req, func(r buffer.Record) error {
				if _, err := parseRecord(r.Data); err != nil || r.Appended.IsZero() {
					t.Errorf("record %s (appended %v): %v", r.Data, r.Appended, err)
				}
				n++
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if n != tc.want {
				t.Fatalf("%d fixes, want %d", n, tc.want)
			}
		})
	}
	if _, err := askDaemon(ctx, path, controlRequest{Op: "reboot"}); err != nil {
		t.Fatal(err)
	}
	if err := daemonFixes(ctx, path, controlRequest{}, func(buffer.Record) error { return nil }); err != nil {
		t.Fatal(err)
	}

	stop()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after stop: %v", err)
	}
	if _, err := daemonStatus(ctx, path); err == nil || !strings.Contains(err.Error(), errNoDaemon.Error()) {
		t.Errorf("status after stop: %v, want errNoDaemon", err)
	}
}

func TestDrainMeter(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name           string
		samples        []drainSample
		drain, backlog float64
	}{
		{name: "no samples"},
		{name: "one sample", samples: []drainSample{{at: t0, acked: 5, pending: 100}}},
		{name: "draining", samples: []drainSample{{at: t0, acked: 0, pending: 1000}, {at: t0.Add(10 * time.Second), acked: 500, pending: 600}},
			drain: 50, backlog: -40},
		{name: "window keeps the last minute", samples: []drainSample{{at: t0, acked: 0, pending: 0},
			{at: t0.Add(30 * time.Second), acked: 1000, pending: 0}, {at: t0.Add(90 * time.Second), acked: 1600, pending: 60},
			{at: t0.Add(100 * time.Second), acked: 1700, pending: 70}},
			drain: 10, backlog: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m drainMeter
			for _, s := range tc.samples {
				m.add(s)
			}
			if d, b := m.rates(); d != tc.drain || b != tc.backlog {
				t.Fatalf("rates = %g, %g; want %g, %g", d, b, tc.drain, tc.backlog)
			}
		})
	}
}

func TestFieldConfig(t *testing.T) {
	dir := t.TempDir()
	noTruck := filepath.Join(dir, "config.toml")
	writeFile(t, noTruck, "[receiver]\ndevice = \"/dev/gps0\"\n[buffer]\ndir = \"/srv/gps\"\n")
	broken := filepath.Join(dir, "broken.toml")
	writeFile(t, broken, "[buffer]\ndir = 7\n")
	tests := []struct {
		name, path, env    string
		wantSocket, wantDB string
		wantErr            string
	}{
		{name: "daemon-only keys missing", path: noTruck, wantSocket: "/run/gps-agent/agent.sock", wantDB: "/srv/gps"},
		{name: "environment override", path: noTruck, env: "/tmp/x.sock", wantSocket: "/tmp/x.sock", wantDB: "/srv/gps"},
		{name: "no file: the packaged defaults", path: filepath.Join(dir, "none.toml"), wantSocket: "/run/gps-agent/agent.sock", wantDB: "/var/lib/gps-agent"},
		{name: "bad value names the line", path: broken, wantErr: "broken.toml:2: buffer.dir"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("GPS_AGENT_STATUS_SOCKET", tc.env)
			}
			cfg, err := fieldConfig(tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || cfg.StatusSocket != tc.wantSocket || cfg.Buffer.Dir != tc.wantDB {
				t.Fatalf("socket %q, dir %q, err %v", cfg.StatusSocket, cfg.Buffer.Dir, err)
			}
		})
	}
}

// The socket reads bytes from any local client of the group: no request may crash or hang the daemon, and every
// one is answered with JSON.
func FuzzControlRequest(f *testing.F) {
	for _, s := range []string{`{"op":"status"}`, `{"op":"fixes","limit":2}`, `{"op":"fixes","since":"x"}`, `{"op":1}`, "", "\x00\xff{"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		p := newTestPipeline(t, 3)
		s := &controlServer{p: p, log: slog.New(slog.DiscardHandler), drain: &drainMeter{}}
		client, server := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- s.serve(context.Background(), server); server.Close() }()
		client.SetDeadline(time.Now().Add(10 * time.Second))
		go func() { client.Write(append(bytes.ReplaceAll(req, []byte("\n"), nil), '\n')) }()
		reply, err := io.ReadAll(client)
		if err != nil {
			t.Fatalf("read reply: %v", err)
		}
		<-done
		for _, line := range bytes.Split(bytes.TrimSpace(reply), []byte("\n")) {
			if !json.Valid(line) {
				t.Fatalf("reply line %q is not JSON", line)
			}
		}
	})
}

// A status_socket that names a file which is not a socket (a typo pointing at the database, say) is refused and
// the file is left alone.
func TestControlRefusesToReplaceAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	writeFile(t, path, "precious")
	p := &pipeline{}
	if _, err := p.serveControl(path, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("serveControl over a regular file: err = %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Fatalf("the file was touched: %q, %v", b, err)
	}
}
