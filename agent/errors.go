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
	Socket string // the socket asked; "" when none was (--db)
	Err    error  // why it did not answer
}

func (e *daemonHoldsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "a running daemon holds the buffer %s", e.DB)
	switch {
	case e.Socket == "":
		b.WriteString("; ask it instead (leave out --db)")
	case errors.Is(e.Err, errNoDaemon):
		fmt.Fprintf(&b, " but does not listen on the status socket %s (its log says why, or it uses another status_socket)", e.Socket)
	default:
		fmt.Fprintf(&b, " but its status socket did not answer: %v", e.Err)
	}
	b.WriteString("; to read the file, stop it first: sudo systemctl stop gps-agent (OpenWrt: /etc/init.d/gps-agent stop)")
	return b.String()
}

// exitError makes cli exit with code: the command has already said why on stderr.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
