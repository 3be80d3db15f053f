package main

import (
	"log/slog"
	"math"
	"time"

	"github.com/fleetedge/gps-agent/buffer"
	"github.com/fleetedge/gps-agent/nmea"
	"github.com/fleetedge/gps-agent/uplink"
)

// Status is the agent's state in one value: what the periodic log line shows, and what `gps-agent status` will.
type Status struct {
	Version  string            `json:"version"`
	Started  time.Time         `json:"started"`
	Receiver ReceiverStatus    `json:"receiver"`
	Filter   map[string]uint64 `json:"filter_dropped"`
	Lost     uint64            `json:"fixes_lost"` // fixes the buffer refused (no seq could be reserved)
	Clock    ClockStatus       `json:"clock"`
	Buffer   buffer.Stats      `json:"buffer"`
	Uplink   uplink.Stats      `json:"uplink"`
	// Health counts the health rows put to [kinesis] health_stream (sent, failed, replaced unsent); nil when off.
	Health *uplink.AsideStats `json:"health,omitempty"`
}

// ReceiverStatus is the receiver's device and counters.
type ReceiverStatus struct {
	Device   string          `json:"device"`         // the serial device, or "gpsd HOST:PORT"
	Link     *nmea.LinkState `json:"link,omitempty"` // open or unavailable and why; gpsd's answers; the modem's last commands
	Baud     int             `json:"baud"`
	Counters nmea.Stats      `json:"counters"`
	LastFix  *FixSummary     `json:"last_fix,omitempty"` // the receiver's last fix, kept by the filter or not
}

// FixSummary is what a technician checks of the receiver's last fix.
type FixSummary struct {
	Time    time.Time `json:"time"`
	Lat     float64   `json:"lat"`
	Lon     float64   `json:"lon"`
	Quality int       `json:"quality"`
	Sats    int       `json:"sats"`           // -1 when the receiver does not say
	HDOP    float64   `json:"hdop,omitempty"` // 0 when the receiver does not say
}

func summarize(f nmea.Fix) *FixSummary {
	s := &FixSummary{Time: f.Time, Lat: f.Lat, Lon: f.Lon, Quality: f.Quality, Sats: f.Sats}
	if !math.IsNaN(f.HDOP) {
		s.HDOP = f.HDOP
	}
	return s
}

// ClockStatus compares the gateway clock with GNSS time.
type ClockStatus struct {
	OffsetMs      int64  `json:"offset_ms"`      // gateway - GNSS at the last fix
	SkewedFixes   uint64 `json:"skewed_fixes"`   // fixes received while the offset was beyond 2 s
	OffsetChanges uint64 `json:"offset_changes"` // times the offset went beyond 2 s, moved by more while beyond, or came back
	// RolloverFixes counts fixes whose GNSS date was moved forward by whole 1024-week eras (rollover.go).
	RolloverFixes uint64 `json:"week_rollover_fixes"`
}

// receiverName is how status and check name the receiver's source.
func receiverName(r ReceiverConfig) string {
	if r.Gpsd != "" {
		return "gpsd " + r.Gpsd
	}
	return r.Device
}

func (p *pipeline) status() Status {
	link := p.rx.Link()
	st := Status{
		Version: version,
		Started: p.started,
		Receiver: ReceiverStatus{
			Device:   receiverName(p.cfg.Receiver),
			Link:     &link,
			Baud:     p.rx.CurrentBaud(),
			Counters: p.rxCounters.Snapshot(),
			LastFix:  p.lastFix.Load(),
		},
		Filter: map[string]uint64{},
		Lost:   p.appendErrors.Load(),
		Clock: ClockStatus{
			OffsetMs:      time.Duration(p.clock.offset.Load()).Milliseconds(),
			SkewedFixes:   p.clock.skewed.Load(),
			OffsetChanges: p.clock.changes.Load(),
			RolloverFixes: p.rollover.fixed.Load(),
		},
		Buffer: p.buf.Stats(),
		Uplink: p.up.Stats(),
	}
	p.filter.eachDropped(func(reason string, n uint64) { st.Filter[reason] = n })
	if p.health != nil {
		h := p.up.AsideStats()
		st.Health = &h
	}
	return st
}

// logAttrs is the status as one log line's attributes: the counts a technician reads in the journal.
func (s Status) logAttrs() []any {
	rx := s.Receiver.Counters
	var dropped uint64
	for _, n := range s.Filter {
		dropped += n
	}
	return []any{
		slog.Group("receiver", "sentences", rx.Sentences, "fixes", rx.Fixes, "bad_checksum", rx.BadChecksum,
			"unparsable", rx.Unparsable, "no_fix", rx.NoFix, "reconnects", rx.Reconnects),
		slog.Group("filter", "dropped", dropped),
		"fixes_lost", s.Lost,
		slog.Group("buffer", "pending", s.Buffer.Pending, "pending_bytes", s.Buffer.PendingBytes,
			"dropped", s.Buffer.DroppedMaxBytes+s.Buffer.DroppedMaxAge, "commit_errors", s.Buffer.CommitErrors),
		slog.Group("uplink", "acked", s.Uplink.RecordsAcked, "calls", s.Uplink.Calls, "retries", s.Uplink.Retries,
			"throttles", s.Uplink.Throttles, "bytes_sent", s.Uplink.BytesSent, "bytes_received", s.Uplink.BytesReceived),
		slog.Group("clock", "offset_ms", s.Clock.OffsetMs, "offset_changes", s.Clock.OffsetChanges,
			"week_rollover_fixes", s.Clock.RolloverFixes),
	}
}
