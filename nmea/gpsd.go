package nmea

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"time"
)

// gpsdWatch asks gpsd for the receiver's sentences as it reads them (for a
// binary receiver, the NMEA gpsd makes of it) and nothing else: no JSON
// reports, so the stream is the same NMEA a serial port gives, after gpsd's
// VERSION, DEVICES and WATCH replies.
const gpsdWatch = `?WATCH={"enable":true,"nmea":true}` + "\n"

// gpsdDialTimeout bounds a connect to gpsd: it runs on the same gateway, so a
// connect that takes longer is a gpsd that is not there.
const gpsdDialTimeout = 5 * time.Second

// maxGpsdJSON bounds what is kept of one JSON line of gpsd (a DEVICES reply
// with a few receivers is well under 1 KiB); the rest of a longer line is
// skipped, never buffered.
const maxGpsdJSON = 16 << 10

// GpsdInfo is what gpsd said about itself on the last connection.
type GpsdInfo struct {
	Release string   `json:"release,omitempty"` // gpsd's version, from its VERSION reply
	Devices []string `json:"devices"`           // the receivers gpsd reads, from its DEVICES reply; empty: none
	Error   string   `json:"error,omitempty"`   // the last ERROR reply, e.g. an unknown request
}

// gpsdConn is a connection to gpsd that reads like a serial port: the JSON
// lines gpsd sends (they start with '{') are taken out and handed to onJSON,
// everything else (the NMEA) is returned; and a read returns after
// readTimeout with no data rather than blocking, as OpenPort's do.
type gpsdConn struct {
	c         net.Conn
	onJSON    func(line []byte)
	lineStart bool // the next byte starts a line
	inJSON    bool // inside a JSON line, until its '\n'
	jbuf      []byte
}

// dialGpsd connects to gpsd at addr (HOST:PORT) and asks for NMEA.
func dialGpsd(addr string, onJSON func([]byte)) (io.ReadCloser, error) {
	c, err := net.DialTimeout("tcp", addr, gpsdDialTimeout)
	if err != nil {
		return nil, fmt.Errorf("open receiver gpsd %s: %w", addr, err)
	}
	if err := c.SetWriteDeadline(time.Now().Add(gpsdDialTimeout)); err == nil {
		_, err = io.WriteString(c, gpsdWatch)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("open receiver gpsd %s: send WATCH: %w", addr, err)
	}
	return &gpsdConn{c: c, onJSON: onJSON, lineStart: true}, nil
}

// Read returns the NMEA bytes of one read. A read that times out returns 0
// bytes and no error; gpsd closing the connection is io.EOF.
func (g *gpsdConn) Read(p []byte) (int, error) {
	if err := g.c.SetReadDeadline(time.Now().Add(readTimeout)); err != nil {
		return 0, err
	}
	n, err := g.c.Read(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil
	}
	return g.filter(p[:n]), err
}

// filter keeps the NMEA of p in place, hands each complete JSON line to
// onJSON, and returns how many bytes were kept.
func (g *gpsdConn) filter(p []byte) int {
	out := p[:0]
	for _, b := range p {
		if g.lineStart && b == '{' {
			g.inJSON = true
		}
		g.lineStart = b == '\n'
		if !g.inJSON {
			out = append(out, b)
			continue
		}
		if len(g.jbuf) < maxGpsdJSON {
			g.jbuf = append(g.jbuf, b)
		}
		if b == '\n' {
			g.inJSON = false
			if g.onJSON != nil {
				g.onJSON(g.jbuf)
			}
			g.jbuf = g.jbuf[:0]
		}
	}
	return len(out)
}

func (g *gpsdConn) Close() error { return g.c.Close() }

// gpsdReply is the part of gpsd's JSON replies the agent reads.
type gpsdReply struct {
	Class   string `json:"class"`
	Release string `json:"release"`
	Message string `json:"message"`
	Devices []struct {
		Path string `json:"path"`
	} `json:"devices"`
}

// apply updates info with one JSON line of gpsd, and reports whether it was
// a DEVICES reply (the list of receivers gpsd reads). A line that does not
// decode changes nothing: gpsd's output is input, never trusted.
func (info *GpsdInfo) apply(line []byte) (devices bool) {
	var r gpsdReply
	if json.Unmarshal(line, &r) != nil {
		return false
	}
	switch r.Class {
	case "VERSION":
		info.Release = r.Release
	case "DEVICES":
		info.Devices = make([]string, 0, len(r.Devices)) // a new slice: a copy handed to Link may share the old one
		for _, d := range r.Devices {
			info.Devices = append(info.Devices, d.Path)
		}
		return true
	case "ERROR":
		info.Error = r.Message
	}
	return false
}

// gpsdJSON returns the handler of gpsd's JSON lines for one Run: it keeps
// what gpsd says in the link state, and logs the receivers gpsd reads when
// they change (a gpsd that reads none sends no NMEA, which is not the
// agent's fault).
func (r *Receiver) gpsdJSON(log *slog.Logger) func([]byte) {
	return func(line []byte) {
		var changed bool
		var info GpsdInfo
		r.update(func(st *LinkState) {
			if st.Gpsd == nil {
				st.Gpsd = &GpsdInfo{}
			}
			before := slices.Clone(st.Gpsd.Devices)
			if st.Gpsd.apply(line) {
				changed = before == nil || !slices.Equal(before, st.Gpsd.Devices)
			}
			info = *st.Gpsd
		})
		switch {
		case !changed:
		case len(info.Devices) == 0:
			log.Warn("gpsd reads no receiver: no NMEA will come until it does", "gpsd_release", info.Release)
		default:
			log.Info("gpsd reads", "gpsd_devices", info.Devices, "gpsd_release", info.Release)
		}
	}
}

// ProbeGpsd connects to gpsd at addr, asks for NMEA and listens up to listen,
// as Probe listens to a serial port: for `gps-agent check`. gpsd serves any
// number of clients, so this works while the daemon reads it too. The error
// is the connection's (gpsd not running, or it hung up); what gpsd said of
// itself comes back either way.
func ProbeGpsd(ctx context.Context, addr string, listen time.Duration) (ProbeResult, GpsdInfo, error) {
	var info GpsdInfo
	conn, err := dialGpsd(addr, func(line []byte) { info.apply(line) })
	if err != nil {
		return ProbeResult{Device: "gpsd " + addr, Sats: -1}, info, fmt.Errorf("probe: %w", err)
	}
	defer conn.Close()
	res, err := listenFor(ctx, conn, listen)
	res.Device = "gpsd " + addr
	if err != nil {
		return res, info, fmt.Errorf("probe gpsd %s: %w", addr, err)
	}
	return res, info, nil
}
