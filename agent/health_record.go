package main

// The health row: one small JSON record a gateway sends about itself to [kinesis] health_stream, so that a
// fleet's dashboard sees which gateways lost their antenna, their clock or their backlog. It is a contract of its
// own, apart from the position record (docs/health.schema.json, its own "v"); health.go is something else: the
// systemd watchdog.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

// healthVersion is the health row's "v". A consumer that meets a higher one than it knows reads the fields it
// knows and keeps the row: fields are only ever added within a version.
const healthVersion = 1

// The receiver's states in a health row.
const (
	rxOK          = "ok"          // fixes arrive
	rxNoFix       = "no_fix"      // sentences arrive, but no fix for noFixAfter (antenna, sky, cold start)
	rxSilent      = "silent"      // the device is open but sends nothing (a receiver that lost power, a stopped engine)
	rxUnavailable = "unavailable" // the device (or gpsd) cannot be opened: unplugged, wrong path, gpsd down
)

// Why a row was sent.
const (
	healthStart    = "start"    // the first row after the agent started
	healthInterval = "interval" // health_interval passed with no change
	healthChange   = "change"   // the receiver's state changed
	healthCheck    = "check"    // `gps-agent check` put it: not the daemon's
)

// noFixAfter is how long sentences may arrive without a fix before the receiver counts as "no_fix", and
// silentAfter how long an open device may send nothing before it counts as "silent": ten epochs at 1 Hz, the
// receiver's own silence report (nmea.DefaultSilenceAfter), so that a lost epoch or two is not a change.
const (
	noFixAfter  = 10 * time.Second
	silentAfter = nmea.DefaultSilenceAfter
)

// healthRow is one health record (docs/health.schema.json). Times are UTC RFC 3339 with milliseconds; a number
// that cannot be known (no fix since boot) is null, never 0.
type healthRow struct {
	V       int    `json:"v"`
	TruckID string `json:"truck_id"`
	Boot    string `json:"boot"` // random per agent start: seq restarts at 1 with a new boot
	Seq     uint64 `json:"seq"`  // per boot, from 1; a gap is a row replaced before it could be sent
	TS      string `json:"ts"`   // the agent's best time (TSSrc)
	// TSSrc is "gnss" when TS is the last fix's GNSS time carried forward on the monotonic clock, "gateway" when
	// no fix has been seen since the agent started and TS is the gateway clock.
	TSSrc  string  `json:"ts_src"`
	GNSSTS *string `json:"gnss_ts"` // the last fix's GNSS time; null without a fix since the agent started
	Reason string  `json:"reason"`  // start, interval, change or check
	Check  bool    `json:"check,omitempty"`

	Receiver      string `json:"receiver"`                 // ok, no_fix, silent or unavailable
	ReceiverError string `json:"receiver_error,omitempty"` // why it is unavailable
	Sentences     uint64 `json:"sentences"`                // checksummed NMEA sentences since the agent started
	Fixes         uint64 `json:"fixes"`                    // fixes decoded since the agent started

	Pending        int     `json:"pending"`          // fixes in the buffer not yet stored by Kinesis
	OldestPendingS float64 `json:"oldest_pending_s"` // age of the oldest of them against TS, 0 when none
	Dropped        uint64  `json:"dropped"`          // buffered fixes dropped unsent (max_bytes, max_age) since start
	Lost           uint64  `json:"lost"`             // fixes the buffer could not take since start
	Filtered       uint64  `json:"filtered"`         // fixes the filter left out since start (by design: min_period...)

	ClockOffsetS  *float64 `json:"clock_offset_s"` // gateway clock - GNSS time; null without a fix
	BytesSent     uint64   `json:"bytes_sent"`     // to Kinesis since start, TLS included, health rows included
	BytesReceived uint64   `json:"bytes_received"`
	UptimeS       float64  `json:"uptime_s"`
	AgentVersion  string   `json:"agent_version"`
}

// fixSeen is the last fix: its GNSS time, and when it was received (time.Now, so that its monotonic reading
// carries GNSS time forward across a step of the gateway's clock).
type fixSeen struct {
	gnss, at time.Time
}

// healthInputs is what a row is made of, gathered by the daemon from its parts or by check from the daemon's
// status.
type healthInputs struct {
	now           time.Time // time.Now: wall and monotonic
	fix           *fixSeen  // nil: no fix since the agent started
	receiver      string
	receiverError string
	sentences     uint64
	fixes         uint64
	pending       int
	oldestPending time.Time // GNSS time of the oldest pending fix; zero when none
	dropped, lost uint64
	filtered      uint64
	bytesSent     uint64
	bytesReceived uint64
	uptime        time.Duration
}

// newBootID is a random ID for one start of the agent: seq is per boot, and (boot, seq) names a row.
func newBootID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b[:])
}

const healthTimeFormat = "2006-01-02T15:04:05.000Z"

// buildHealthRow makes the row of in.
func buildHealthRow(truckID, boot string, seq uint64, reason string, in healthInputs) healthRow {
	r := healthRow{V: healthVersion, TruckID: truckID, Boot: boot, Seq: seq, Reason: reason, Check: reason == healthCheck,
		Receiver: in.receiver, ReceiverError: in.receiverError, Sentences: in.sentences, Fixes: in.fixes,
		Pending: in.pending, Dropped: in.dropped, Lost: in.lost, Filtered: in.filtered,
		BytesSent: in.bytesSent, BytesReceived: in.bytesReceived, UptimeS: roundTo(in.uptime.Seconds(), 3),
		AgentVersion: version}
	best, src := in.now.UTC(), "gateway"
	if f := in.fix; f != nil {
		best, src = f.gnss.Add(in.now.Sub(f.at)).UTC(), "gnss"
		g := f.gnss.UTC().Format(healthTimeFormat)
		r.GNSSTS = &g
		// The gateway's wall clock now (Round(0) drops the monotonic reading) against the best time.
		off := roundTo(in.now.Round(0).Sub(best).Seconds(), 3)
		r.ClockOffsetS = &off
	}
	r.TS, r.TSSrc = best.Format(healthTimeFormat), src
	if in.pending > 0 && !in.oldestPending.IsZero() {
		r.OldestPendingS = roundTo(max(best.Sub(in.oldestPending).Seconds(), 0), 3)
	}
	return r
}

func (r healthRow) encode() []byte {
	b, _ := json.Marshal(r) // plain fields only: cannot fail
	return b
}

func roundTo(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(x*p+copySign(0.5, x))) / p
}

func copySign(h, x float64) float64 {
	if x < 0 {
		return -h
	}
	return h
}

// receiverState judges the receiver: link is its nmea link state; sinceOpen how long ago the device (or gpsd)
// opened; sinceSentence and sinceFix how long ago the last sentence and the last fix arrived, negative when none
// did since it opened. It returns "" while it cannot tell yet: a device that just opened has its ten seconds to
// speak and to fix before it counts as silent or without a fix, and meanwhile is not "ok" either; a receiver whose
// fixes stopped with its sentences is going silent, not losing its fix, and is not called no_fix on the way.
func receiverState(link string, sinceOpen, sinceSentence, sinceFix time.Duration) string {
	switch {
	case link == nmea.LinkStarting:
		return ""
	case link != nmea.LinkOpen:
		return rxUnavailable
	case sinceSentence >= silentAfter, sinceSentence < 0 && sinceOpen >= silentAfter:
		return rxSilent
	case sinceSentence < 0:
		return ""
	case sinceFix >= noFixAfter, sinceFix < 0 && sinceOpen >= noFixAfter:
		if sinceSentence < stillTalking {
			return rxNoFix
		}
		return ""
	case sinceFix < 0:
		return ""
	default:
		return rxOK
	}
}

// stillTalking is how recent the last sentence must be for a receiver without a fix to count as talking: a
// receiver sends every second, and one quiet for longer is on its way to silent.
const stillTalking = 3 * time.Second
