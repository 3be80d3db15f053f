package nmea

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// DefaultATTimeout is ATConfig.Timeout when zero: Quectel, Sierra and Telit
// document well under a second for their GNSS commands; 5 s leaves room for
// a modem busy registering on the network.
const DefaultATTimeout = 5 * time.Second

// maxATLine bounds one line of a modem's reply; a longer one is cut, never
// buffered whole.
const maxATLine = 512

// ATConfig is a cellular modem whose GNSS engine has to be started with AT
// commands on its AT port before NMEA comes on its NMEA port (Quectel
// AT+QGPS=1, Telit AT$GPSP=1, Sierra Wireless AT!GPSTRACK...).
type ATConfig struct {
	Device  string        // the modem's AT port, e.g. /dev/ttyUSB2
	Init    []string      // commands sent in order, each answered before the next
	Timeout time.Duration // per command; 0: DefaultATTimeout

	// open replaces OpenPort in tests.
	open func(device string, baud int) (io.ReadCloser, error)
}

// ATResult is a modem's answer to one command.
type ATResult struct {
	Command string `json:"command"`
	OK      bool   `json:"ok"`              // the final result was OK
	Final   string `json:"final,omitempty"` // the final result line: OK, ERROR, +CME ERROR: 504; empty on a timeout
	Reply   string `json:"reply,omitempty"` // the lines before it (information, and any unsolicited line), joined by " | "
	Error   string `json:"error,omitempty"` // no final result (timeout), or the port failed
}

// SendAT opens the AT port, sends each command and waits up to timeout for
// its final result (OK, ERROR, +CME ERROR: N, +CMS ERROR: N), ignoring the
// echo of the command; other lines are kept as the reply. A command that
// fails does not stop the next one. The error is the port's: it could not be
// opened, or it failed (then the results so far are returned with it).
//
// The port is closed again: a modem's AT port is shared with ModemManager or
// a dialer, and is held only while commands run.
func SendAT(ctx context.Context, cfg ATConfig) ([]ATResult, error) {
	open := cfg.open
	if open == nil {
		open = OpenPort
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultATTimeout
	}
	// The rate does not matter on a USB modem's ports; 115200 is the usual
	// rate of a modem's UART.
	port, err := open(cfg.Device, 115200)
	if err != nil {
		return nil, fmt.Errorf("modem AT port: %w", err)
	}
	defer port.Close()
	w, ok := port.(io.Writer)
	if !ok {
		return nil, fmt.Errorf("modem AT port %s: not writable", cfg.Device)
	}
	at := &atSession{port: port, buf: make([]byte, 256)}
	at.drain()
	var out []ATResult
	for _, cmd := range cfg.Init {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if _, err := io.WriteString(w, cmd+"\r"); err != nil {
			return out, fmt.Errorf("modem AT port %s: write %s: %w", cfg.Device, cmd, err)
		}
		res, err := at.answer(ctx, cmd, timeout)
		out = append(out, res)
		if err != nil {
			return out, fmt.Errorf("modem AT port %s: %w", cfg.Device, err)
		}
	}
	return out, nil
}

// atSession reads a modem's lines.
type atSession struct {
	port io.Reader
	buf  []byte
	line []byte
	done []string
}

// drain drops what the modem sent before our first command (a stale result,
// an unsolicited RDY): it would be taken for the answer. It reads until a read
// returns nothing (the port's read timeout), at most a few times.
func (a *atSession) drain() {
	for range 8 {
		n, err := a.port.Read(a.buf)
		if n == 0 || err != nil {
			break
		}
	}
	a.line, a.done = a.line[:0], nil
}

// answer waits for cmd's final result.
func (a *atSession) answer(ctx context.Context, cmd string, timeout time.Duration) (ATResult, error) {
	res := ATResult{Command: cmd}
	var reply []string
	deadline := time.Now().Add(timeout)
	for {
		for len(a.done) > 0 {
			l := a.done[0]
			a.done = a.done[1:]
			switch {
			case strings.EqualFold(l, cmd):
				continue // the echo (ATE1, modems' default)
			case isFinal(l):
				res.Final, res.OK, res.Reply = l, l == "OK", strings.Join(reply, " | ")
				return res, nil
			}
			reply = append(reply, l)
		}
		if err := ctx.Err(); err != nil {
			res.Error = err.Error()
			return res, err
		}
		if time.Now().After(deadline) {
			res.Reply = strings.Join(reply, " | ")
			res.Error = fmt.Sprintf("no final result within %s", timeout)
			return res, nil
		}
		n, err := a.port.Read(a.buf)
		a.lines(a.buf[:n])
		if err != nil {
			res.Reply, res.Error = strings.Join(reply, " | "), err.Error()
			return res, fmt.Errorf("read answer to %s: %w", cmd, err)
		}
	}
}

// lines splits p into complete lines (CR, LF or both end one), dropping empty
// ones and bytes that are not printable.
func (a *atSession) lines(p []byte) {
	for _, b := range p {
		switch {
		case b == '\r' || b == '\n':
			if l := string(bytes.TrimSpace(a.line)); l != "" {
				a.done = append(a.done, l)
			}
			a.line = a.line[:0]
		case b < 0x20 || b > 0x7e, len(a.line) >= maxATLine: // the rest of a long line is cut
		default:
			a.line = append(a.line, b)
		}
	}
}

// isFinal reports a final result code of a command (3GPP TS 27.007's verbose
// codes that end one).
func isFinal(l string) bool {
	return l == "OK" || l == "ERROR" || strings.HasPrefix(l, "+CME ERROR:") || strings.HasPrefix(l, "+CMS ERROR:") ||
		l == "NO CARRIER"
}

// startEngine sends the modem's commands, if any, and records the outcome in
// the link state. A command that fails is logged with the modem's reply and
// start-up goes on: Quectel answers +CME ERROR: 504 when its engine already
// runs. A round that ends as the last one did is logged at Debug only, so a
// modem that stays silent does not fill the journal.
func (r *Receiver) startEngine(ctx context.Context, log *slog.Logger, why string) {
	if r.AT == nil || len(r.AT.Init) == 0 {
		return
	}
	res, err := SendAT(ctx, *r.AT)
	if ctx.Err() != nil {
		return
	}
	var prev ATState
	r.update(func(st *LinkState) {
		prev = *st.AT
		prev.Results = slices.Clone(prev.Results)
		a := st.AT
		a.Sent, a.Why, a.Results, a.Error = time.Now(), why, res, ""
		a.Rounds++
		if err != nil {
			a.Error = err.Error()
		}
	})
	if err != nil {
		level := slog.LevelWarn
		if prev.Error == err.Error() {
			level = slog.LevelDebug
		}
		// Not "err": the agent adds a hint about the receiver's device to those, and this is the AT port.
		log.Log(ctx, level, "modem commands not sent", "at_device", r.AT.Device, "at_err", err, "why", why)
	}
	for i, x := range res {
		level := slog.LevelInfo
		if !x.OK {
			level = slog.LevelWarn
		}
		if i < len(prev.Results) && prev.Results[i] == x {
			level = slog.LevelDebug
		}
		log.Log(ctx, level, "modem command", "at_device", r.AT.Device, "command", x.Command, "ok", x.OK,
			"final", x.Final, "reply", x.Reply, "at_err", x.Error, "why", why)
	}
}
