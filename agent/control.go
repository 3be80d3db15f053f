package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fleetedge/gps-agent/buffer"
)

// Control socket limits: a request is one short line; a client that stops reading is dropped after writeTimeout
// rather than holding a goroutine and a buffer page.
const (
	maxRequest    = 4 << 10
	readTimeout   = 5 * time.Second
	writeTimeout  = 10 * time.Second
	drainWindow   = time.Minute
	sampleEvery   = 5 * time.Second
	fixesPageSize = 500
)

// serveControl serves the daemon's status and buffered fixes on a unix socket at path until the returned stop is
// called. The socket is a file, mode 0660: only the agent's user and group (technicians added to it) may ask, and
// no network port is ever opened. A stale socket file left by a killed daemon is replaced; a socket another live
// daemon answers on is an error. stop closes the socket, ends open connections and removes the file.
func (p *pipeline) serveControl(path string, log *slog.Logger) (stop func(), err error) {
	if path == "" {
		return nil, errors.New("status socket: no path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			// A misconfigured status_socket must never delete a file that is not ours.
			return nil, fmt.Errorf("status socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("status socket %s: another gps-agent answers on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("status socket: remove stale %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("status socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &controlServer{p: p, log: log, drain: &drainMeter{}}
	var wg sync.WaitGroup
	wg.Go(func() { s.drain.run(ctx, p) })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("status socket stopped accepting", "err", err)
				}
				return
			}
			wg.Go(func() {
				stopConn := context.AfterFunc(ctx, func() { conn.Close() })
				defer stopConn()
				defer conn.Close()
				if err := s.serve(ctx, conn); err != nil {
					log.Debug("status request", "err", err)
				}
			})
		}
	})
	log.Debug("status socket listening", "path", path)
	return func() {
		cancel()
		ln.Close()
		wg.Wait()
	}, nil
}

type controlServer struct {
	p     *pipeline
	log   *slog.Logger
	drain *drainMeter
}

// serve answers one request.
func (s *controlServer) serve(ctx context.Context, conn net.Conn) error {
	conn.SetReadDeadline(time.Now().Add(readTimeout))
	line, err := bufio.NewReader(io.LimitReader(conn, maxRequest)).ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read request: %w", err)
	}
	var req controlRequest
	enc := json.NewEncoder(conn)
	write := func(v any) error {
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		return enc.Encode(v)
	}
	if err := json.Unmarshal(line, &req); err != nil {
		return write(fixLine{Error: fmt.Sprintf("bad request: %v", err)})
	}
	switch req.Op {
	case "status":
		return write(s.status())
	case "fixes":
		n, err := eachFix(ctx, s.p.buf, req, func(r buffer.Record) error {
			return write(fixLine{Fix: r.Data, Appended: r.Appended})
		})
		if err != nil {
			return write(fixLine{Error: err.Error()})
		}
		return write(fixLine{End: true, Count: n})
	default:
		return write(fixLine{Error: fmt.Sprintf("unknown op %q", req.Op)})
	}
}

func (s *controlServer) status() fieldStatus {
	st := s.p.status()
	fs := fieldStatus{Daemon: "running", Now: time.Now(), Agent: &st, Buffer: st.Buffer}
	oldest, _ := s.p.buf.Oldest(0, 1)
	newest, _ := s.p.buf.Newest(1)
	fs.readRecords(oldest, newest)
	fs.DrainRate, fs.BacklogRate = s.drain.rates()
	fs.BytesPerFix, fs.MBPerDay = s.drain.traffic()
	return fs
}

// eachFix calls fn for every pending record of b, oldest first, whose fix time is within [req.Since, req.Until]
// (zero: open), at most req.Limit of them (0: all). It returns how many it passed to fn. Records that do not
// decode are passed on too: the reader shows what the buffer holds, not what it wishes.
func eachFix(ctx context.Context, b *buffer.Buffer, req controlRequest, fn func(buffer.Record) error) (int, error) {
	var after uint64
	n := 0
	for {
		page, err := b.Oldest(after, fixesPageSize)
		if err != nil {
			return n, fmt.Errorf("read buffer after seq %d: %w", after, err)
		}
		if len(page) == 0 {
			return n, nil
		}
		for _, r := range page {
			after = r.Seq
			if !req.Since.IsZero() || !req.Until.IsZero() {
				rec, err := parseRecord(r.Data)
				if err == nil && (rec.TS.Before(req.Since) || (!req.Until.IsZero() && rec.TS.After(req.Until))) {
					continue
				}
			}
			if err := fn(r); err != nil {
				return n, err
			}
			n++
			if req.Limit > 0 && n >= req.Limit {
				return n, nil
			}
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
	}
}

// drainMeter measures how fast the backlog drains: the records Kinesis stored and the change of the pending
// count over the last minute, sampled every few seconds.
type drainMeter struct {
	mu      sync.Mutex
	samples []drainSample
}

type drainSample struct {
	at      time.Time
	acked   uint64
	pending int
	bytes   uint64 // Kinesis traffic both ways so far (uplink.Stats BytesSent + BytesReceived)
}

func (m *drainMeter) run(ctx context.Context, p *pipeline) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		us := p.up.Stats()
		m.add(drainSample{at: time.Now(), acked: us.RecordsAcked, pending: p.buf.Stats().Pending,
			bytes: us.BytesSent + us.BytesReceived})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *drainMeter) add(s drainSample) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples = append(m.samples, s)
	// Keep one sample older than the window, so that a full window is measured.
	for len(m.samples) > 2 && s.at.Sub(m.samples[1].at) >= drainWindow {
		m.samples = m.samples[1:]
	}
}

// rates returns records acked per second and the pending count's change per second over the window; zeros until
// two samples exist.
func (m *drainMeter) rates() (drain, backlog float64) {
	a, b, dt := m.window()
	if dt <= 0 {
		return 0, 0
	}
	return float64(b.acked-a.acked) / dt, float64(b.pending-a.pending) / dt
}

// window returns the first and last samples and the seconds between them; dt is 0 until two samples exist.
func (m *drainMeter) window() (a, b drainSample, dt float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.samples) < 2 {
		return a, b, 0
	}
	a, b = m.samples[0], m.samples[len(m.samples)-1]
	return a, b, b.at.Sub(a.at).Seconds()
}

// traffic returns the bytes paid per fix Kinesis stored over the window (0 if none was stored), and the traffic
// over the window projected to a day, in MB (10^6 B, as data plans count): what the truck pays at the current
// rate, handshakes, retries and pings included.
func (m *drainMeter) traffic() (perFix, mbPerDay float64) {
	a, b, dt := m.window()
	if dt <= 0 {
		return 0, 0
	}
	if b.acked > a.acked {
		perFix = float64(b.bytes-a.bytes) / float64(b.acked-a.acked)
	}
	return perFix, float64(b.bytes-a.bytes) / dt * 86400 / 1e6
}
