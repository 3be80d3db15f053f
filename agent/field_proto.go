package main

// The status socket's protocol, kept tiny: the client writes one JSON request line; the daemon answers with one
// JSON line for "status", or one line per buffered fix and a closing line for "fixes". Both ends are this program,
// so the protocol is versioned only by the binary; an unknown op is answered with an error line.

import (
	"encoding/json"
	"time"

	"github.com/fleetedge/gps-agent/buffer"
)

// controlRequest is what `gps-agent status` and `fixes` send.
type controlRequest struct {
	Op    string    `json:"op"` // "status" or "fixes"
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	Limit int       `json:"limit,omitempty"`
}

// fixLine is one line of the "fixes" reply: a fix, or the closing line with the count or an error.
type fixLine struct {
	Fix      json.RawMessage `json:"fix,omitempty"`
	Appended time.Time       `json:"appended,omitzero"`
	End      bool            `json:"end,omitempty"`
	Count    int             `json:"count,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// fieldStatus is what `gps-agent status` shows, built by the running daemon (Daemon "running") or from the
// database of a stopped one ("stopped": only the buffer is known).
type fieldStatus struct {
	Daemon string       `json:"daemon"`          // "running" or "stopped"
	Source string       `json:"source"`          // the socket or database file it was read from
	Now    time.Time    `json:"now"`             // the clock the ages are measured with
	Agent  *Status      `json:"agent,omitempty"` // the daemon's state; nil when stopped
	Buffer buffer.Stats `json:"buffer"`
	// OldestUnsent and Newest are the first and last pending fixes (nil when none).
	OldestUnsent *Record `json:"oldest_unsent,omitempty"`
	Newest       *Record `json:"newest,omitempty"`
	// DrainRate is the records Kinesis stored per second over the last minute; BacklogRate the change of the
	// pending count per second (negative while the backlog drains). Running daemon only.
	DrainRate   float64 `json:"drain_rate"`
	BacklogRate float64 `json:"backlog_rate"`
	// BytesPerFix is the Kinesis traffic (TLS bytes both ways) per fix stored over the last minute, and MBPerDay
	// that minute's traffic projected to a day, in MB of 10^6 B. Running daemon only.
	BytesPerFix float64 `json:"bytes_per_fix"`
	MBPerDay    float64 `json:"mb_per_day"`
}

// readRecords fills the oldest and newest pending fixes of st from b.
func (st *fieldStatus) readRecords(oldest, newest []buffer.Record) {
	if len(oldest) > 0 {
		if r, err := parseRecord(oldest[0].Data); err == nil {
			st.OldestUnsent = &r
		}
	}
	if len(newest) > 0 {
		if r, err := parseRecord(newest[0].Data); err == nil {
			st.Newest = &r
		}
	}
}
