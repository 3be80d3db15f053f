package main

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// errUsage marks an error already explained on stderr with the command's usage.
	errUsage = errors.New("usage")

	// errNoDaemon means no daemon answers on the status socket (no socket file, or nobody listening on it).
	errNoDaemon = errors.New("no daemon answers on the status socket")
)

// daemonHoldsError: a daemon holds the buffer database (bbolt's exclusive lock) but did not answer on its status
// socket. status and fixes neither wait for its lock nor copy the file; they say how to reach or stop it.
type daemonHoldsError struct {
	DB     string
	Socket error // why the socket did not answer; nil when none was asked (--db)
}

func (e *daemonHoldsError) Error() string {
	var b strings.Builder
	if e.Socket != nil {
		fmt.Fprintf(&b, "a running daemon holds the buffer %s but does not answer on its status socket (%v)", e.DB, e.Socket)
		b.WriteString("; check the socket path (status_socket, GPS_AGENT_STATUS_SOCKET) and its permissions,")
	} else {
		fmt.Fprintf(&b, "a running daemon holds the buffer %s; ask it instead (leave out --db),", e.DB)
	}
	b.WriteString(" or stop it to read the file: sudo systemctl stop gps-agent (OpenWrt: /etc/init.d/gps-agent stop)")
	return b.String()
}

// exitError makes cli exit with code: the command has already said why on stderr.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
