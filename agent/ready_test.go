package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// READY=1 does not wait for the receiver (the unit's comment says so): with no receiver at all the agent is ready,
// so that its backlog goes out and systemd does not time the start out.
func TestReadyWithoutTheReceiver(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	device := filepath.Join(t.TempDir(), "ttyUSB7") // never there
	agent := startAgent(t, "run", "--config", writeConfig(t, device, "http://127.0.0.1:9", "s"))
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no READY=1 in 30 s without a receiver (%v); output:\n%s", err, agent.stderr.String())
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			break
		}
	}
	agent.waitLog(t, "open receiver "+device+": ")
	agent.stop(t)
}
