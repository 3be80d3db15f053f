package uplinktest

import (
	"net"
	"sync"
	"sync/atomic"
)

// holeListener wraps a Proxy's listener so that its connections can fall
// into a black hole: the link drops every packet, nothing is refused or
// reset. A userspace proxy cannot drop a SYN, so connections are still
// accepted, but nothing on them ever arrives either way.
//
// A connection that was open while the hole lasted, or accepted during it,
// stays silent for good, as if its NAT entry was lost in the outage: the
// worst case, where nothing ever tells the client that its connection is
// dead. Connections accepted after the hole work normally.
type holeListener struct {
	net.Listener
	on *atomic.Bool // the hole is open now

	mu    sync.Mutex
	conns map[*holeConn]struct{} // open connections
	stats holeStats
}

// holeStats counts connections that fell into a black hole.
type holeStats struct {
	accepted   int // connections accepted
	openAtHole int // connections open when a hole began
	inHole     int // connections accepted while a hole was open
}

func newHoleListener(ln net.Listener, on *atomic.Bool) *holeListener {
	return &holeListener{Listener: ln, on: on, conns: map[*holeConn]struct{}{}}
}

func (l *holeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	hc := &holeConn{Conn: c, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.accepted++
	if l.on.Load() {
		hc.dead.Store(true)
		l.stats.inHole++
	}
	l.conns[hc] = struct{}{}
	return hc, nil
}

// open silences every open connection: the hole begins.
func (l *holeListener) open() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if !c.dead.Swap(true) {
			l.stats.openAtHole++
		}
	}
}

func (l *holeListener) counts() holeStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// holeConn is one accepted connection; once dead, what it reads is
// discarded (the server never sees it) and what it writes is dropped.
type holeConn struct {
	net.Conn
	l    *holeListener
	dead atomic.Bool
}

func (c *holeConn) Read(b []byte) (int, error) {
	for {
		// Checked after the read: bytes that were on their way when the
		// hole began vanish with the rest.
		n, err := c.Conn.Read(b)
		if !c.dead.Load() {
			return n, err
		}
		if err != nil {
			return 0, err
		}
	}
}

func (c *holeConn) Write(b []byte) (int, error) {
	if c.dead.Load() {
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (c *holeConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
