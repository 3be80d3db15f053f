package nmea

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// SimModem is a cellular modem with a GNSS engine, as a Quectel EC25 shows
// itself: an AT port and an NMEA port (two pseudo-terminals, linked as
// Dir/at and Dir/nmea, like udev names), and NMEA only once AT+QGPS=1 has
// started the engine. AT+QGPS=1 answers OK, or +CME ERROR: 504 when the
// engine already runs; AT+QGPS? answers +QGPS: 1 or 0; AT answers OK; any
// other command ERROR. Commands are echoed (ATE1, the modems' default), and
// RDY comes unsolicited after each start, as after a power-up.
//
// Reset is the modem restarting: both ports vanish and come back (new
// pseudo-terminals behind the same links) with the engine stopped.
// StopEngine stops the engine while the ports stay open.
//
// For tests and `gps-agent simulate --modem`; Linux only (OpenPTY).
type SimModem struct {
	Dir string    // where the links at and nmea are made
	Sim Simulator // the drive the engine reports; its Rate paces the NMEA

	mu       sync.Mutex
	running  bool          // the engine runs
	commands []string      // every command received, in order
	reset    chan struct{} // Reset asks Run to recreate the ports
	started  chan struct{} // closed and replaced each time the ports exist
}

// ATPath and NMEAPath are the links of the two ports.
func (m *SimModem) ATPath() string   { return filepath.Join(m.Dir, "at") }
func (m *SimModem) NMEAPath() string { return filepath.Join(m.Dir, "nmea") }

func (m *SimModem) init() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reset == nil {
		m.reset = make(chan struct{}, 1)
		m.started = make(chan struct{})
	}
}

// Ready returns a channel closed once the ports exist (after Run starts, or
// after a Reset).
func (m *SimModem) Ready() <-chan struct{} {
	m.init()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.started
}

// Running reports whether the engine runs.
func (m *SimModem) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running
}

// Commands returns every command the modem received, in order.
func (m *SimModem) Commands() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.commands...)
}

// Reset restarts the modem: the ports vanish and come back, the engine stopped.
func (m *SimModem) Reset() {
	m.init()
	m.mu.Lock()
	m.started = make(chan struct{})
	m.mu.Unlock()
	select {
	case m.reset <- struct{}{}:
	default:
	}
}

// StopEngine stops the GNSS engine; the ports stay.
func (m *SimModem) StopEngine() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running = false
}

// Run serves the modem until ctx ends, then removes its ports and returns
// ctx.Err(); an error creating the ports is returned at once.
func (m *SimModem) Run(ctx context.Context) error {
	m.init()
	for {
		err := m.power(ctx)
		if err != nil || ctx.Err() != nil {
			if err == nil {
				err = ctx.Err()
			}
			return err
		}
	}
}

// power is one power-up: it returns nil on Reset, ctx.Err() when ctx ends.
func (m *SimModem) power(ctx context.Context) error {
	at, _, closeAT, err := OpenPTY(m.ATPath())
	if err != nil {
		return fmt.Errorf("sim modem: %w", err)
	}
	nmea, _, closeNMEA, err := OpenPTY(m.NMEAPath())
	if err != nil {
		closeAT()
		return fmt.Errorf("sim modem: %w", err)
	}
	m.mu.Lock()
	m.running = false
	close(m.started)
	m.mu.Unlock()
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.serveAT(pctx, at) }()
	go func() { defer wg.Done(); m.sendNMEA(pctx, nmea) }()
	select {
	case <-ctx.Done():
	case <-m.reset:
	}
	cancel()
	closeAT() // unblocks serveAT's read
	closeNMEA()
	wg.Wait()
	return ctx.Err()
}

// serveAT answers commands on the AT port's master.
func (m *SimModem) serveAT(ctx context.Context, f *os.File) {
	io := func(s string) bool {
		f.SetWriteDeadline(time.Now().Add(time.Second))
		_, err := f.WriteString(s)
		return err == nil
	}
	io("\r\nRDY\r\n")
	buf := make([]byte, 256)
	var line []byte
	for ctx.Err() == nil {
		n, err := f.Read(buf)
		if err != nil {
			return
		}
		for _, b := range buf[:n] {
			if b != '\r' && b != '\n' {
				if len(line) < 512 {
					line = append(line, b)
				}
				continue
			}
			cmd := strings.TrimSpace(string(line))
			line = line[:0]
			if cmd == "" {
				continue
			}
			if !io(cmd+"\r\r\n") || !io(m.answer(cmd)) {
				return
			}
		}
	}
}

// answer is the modem's reply to cmd, with the final result.
func (m *SimModem) answer(cmd string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.commands = append(m.commands, cmd)
	switch strings.ToUpper(cmd) {
	case "AT":
		return "\r\nOK\r\n"
	case "AT+QGPS=1":
		if m.running {
			return "\r\n+CME ERROR: 504\r\n"
		}
		m.running = true
		return "\r\nOK\r\n"
	case "AT+QGPS?":
		state := 0
		if m.running {
			state = 1
		}
		return fmt.Sprintf("\r\n+QGPS: %d\r\n\r\nOK\r\n", state)
	case "AT+QGPSEND":
		m.running = false
		return "\r\nOK\r\n"
	}
	return "\r\nERROR\r\n"
}

// sendNMEA writes the engine's epochs while it runs; an epoch nobody reads
// within its period is dropped, as a modem would.
func (m *SimModem) sendNMEA(ctx context.Context, f *os.File) {
	sim := &Simulator{Rate: m.Sim.Rate, Lat: m.Sim.Lat, Lon: m.Sim.Lon, Seed: m.Sim.Seed}
	sim.setup()
	for i := 0; ; i++ {
		at := sim.start.Add(time.Duration(i) * sim.period)
		if err := wait(ctx, time.Until(at)); err != nil {
			return
		}
		if !m.Running() {
			continue
		}
		f.SetWriteDeadline(at.Add(sim.period))
		if _, err := f.Write(sim.Epoch(i)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
	}
}
