package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// notifier speaks systemd's sd_notify protocol: datagrams such as "READY=1" to the unix socket named by
// NOTIFY_SOCKET. Outside systemd (no NOTIFY_SOCKET) it does nothing. The protocol is a few lines, so it is written
// here rather than imported.
type notifier struct {
	conn     *net.UnixConn // nil outside systemd
	watchdog time.Duration // WATCHDOG_USEC, 0 when the unit has no WatchdogSec
}

// newNotifier connects to NOTIFY_SOCKET if systemd set it.
func newNotifier() (*notifier, error) {
	n := &notifier{}
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return n, nil
	}
	if path[0] == '@' { // abstract namespace
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("connect to systemd notify socket: %w", err)
	}
	n.conn = conn
	if usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64); err == nil && usec > 0 {
		// WATCHDOG_PID, when set, names the process the watchdog is meant for.
		if pid := os.Getenv("WATCHDOG_PID"); pid == "" || pid == strconv.Itoa(os.Getpid()) {
			n.watchdog = time.Duration(usec) * time.Microsecond
		}
	}
	return n, nil
}

// send sends one notification, such as "READY=1" or "STATUS=...". Errors are returned for the caller to count:
// systemd being gone is no reason to stop recording fixes.
func (n *notifier) send(state string) error {
	if n.conn == nil {
		return nil
	}
	if _, err := n.conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %q: %w", state, err)
	}
	return nil
}

func (n *notifier) close() {
	if n.conn != nil {
		n.conn.Close()
	}
}
