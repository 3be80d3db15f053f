package uplink

import "time"

// Link measurement. Calls go one at a time, so a live fix that arrives
// during a backfill call waits for it: on a poor link (256 kbit/s up) a
// full 500-record call (~155 KB) takes 5 s to upload. The uplink therefore
// measures what the link carries and sizes backfill calls to a fraction of
// a second of it. A second call in flight would not help: bytes already in
// the socket's send buffer go out first.
const (
	// backfillCallTime is how long the backlog part of one call may take
	// to upload at the measured rate. A live fix then waits at most about
	// two calls of backfillCallTime plus a round trip each (~1.3 s at a
	// 300 ms round trip), while the backlog still goes in calls large
	// enough that their ~700 B of headers stay a small share.
	backfillCallTime = 250 * time.Millisecond
	// initialCallBytes is the backlog budget before anything is measured:
	// 16 KB (about 50 fixes) uploads in half a second at 256 kbit/s, and
	// the first reply on a fast link lets the next call grow to 500.
	initialCallBytes = 16 << 10
	// rateWindow is how much upload time the rate estimate remembers:
	// the last few seconds of calls, weighted by their bytes, so a
	// one-fix call (all round trip) barely moves it and a large call
	// counts for what it measured.
	rateWindow = 2 * time.Second
	// minTransfer floors a call's transfer time: a small call's duration
	// is all round trip and Kinesis' own time, which says nothing of the
	// rate.
	minTransfer = 5 * time.Millisecond
	// probeTimeoutMin and probeTimeoutMax bound how long a probe of a
	// down link may wait for its reply once it has a connection: three
	// floors of a call (TCP, TLS, and the call's round trip on a fresh
	// connection) plus 300 ms, 1.3 s at a 300 ms round trip. Before that,
	// its connects have probeConnectWait (probe.go). A probe given up takes
	// its connects with it (the client drops its dials on a failed call).
	probeTimeoutMin     = time.Second
	probeTimeoutMax     = 4 * time.Second
	probeTimeoutUnknown = 2 * time.Second
)

// A call's duration is a floor (the round trip and Kinesis' own time) plus
// its bytes at the upload rate. The floor is measured on small calls (a
// live fix alone); calls that carry a backlog measure the rate beyond it.
const (
	// smallCallBytes is the most a call may carry to measure the floor:
	// a few fixes, a few milliseconds even at 256 kbit/s.
	smallCallBytes = 2 << 10
	// floorRefresh is how old the floor may be before a live fix goes
	// alone again to measure it: a call without backlog every half
	// minute while a backlog drains.
	floorRefresh = 30 * time.Second
)

// linkMeter estimates, from the calls that got a reply, the floor of a
// call's duration and the upload rate beyond it. It belongs to the run
// loop.
type linkMeter struct {
	floor   time.Duration // shortest recent small call
	floorAt time.Time     // when a small call last measured it; zero: never
	bytes   float64       // request bytes of the remembered large calls
	xfer    float64       // their time beyond the floor, seconds
}

// observe notes a call of n request bytes that got its reply after d, at
// now.
func (m *linkMeter) observe(n int, d time.Duration, now time.Time) {
	if d < 0 {
		return
	}
	if n <= smallCallBytes {
		if m.floorAt.IsZero() || d < m.floor {
			m.floor = d
		} else {
			// Drift up, so that a round trip that grew (a worse cell)
			// is followed; until then the rate is underestimated and
			// calls are smaller than they could be, never larger.
			m.floor += (d - m.floor) / 8
		}
		m.floorAt = now
		return
	}
	m.bytes += float64(n)
	m.xfer += max(d-m.floor, minTransfer).Seconds()
	if w := rateWindow.Seconds(); m.xfer > w {
		k := w / m.xfer
		m.bytes, m.xfer = m.bytes*k, w
	}
}

// needFloor reports whether the next call should carry a live fix alone,
// to measure the floor.
func (m *linkMeter) needFloor(now time.Time) bool {
	return m.floorAt.IsZero() || now.Sub(m.floorAt) > floorRefresh
}

// rate returns the measured upload rate in bytes/s, 0 if unknown.
func (m *linkMeter) rate() float64 {
	// Calls that took about the floor tell no rate: all latency.
	if m.xfer < 4*minTransfer.Seconds() {
		return 0
	}
	return m.bytes / m.xfer
}

// callBytes returns the request bytes a backfill call may carry: what the
// link uploads in backfillCallTime, within the API's 5 MiB.
func (m *linkMeter) callBytes() int {
	r := m.rate()
	if r == 0 {
		return initialCallBytes
	}
	return int(min(r*backfillCallTime.Seconds(), MaxCallBytes))
}

// probeTimeout returns how long a probe of a down link may take from the
// moment it has a connection.
func (m *linkMeter) probeTimeout() time.Duration {
	if m.floorAt.IsZero() {
		return probeTimeoutUnknown
	}
	return min(probeTimeoutMax, max(probeTimeoutMin, 3*m.floor+300*time.Millisecond))
}
