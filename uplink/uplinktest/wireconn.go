package uplinktest

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// dialTimeout bounds the Wire's own connect to its target, on this machine.
const dialTimeout = 5 * time.Second

// wireConn is one client connection through a Wire and its meter.
type wireConn struct {
	id       int
	opened   time.Time
	client   net.Conn
	up, down atomic.Int64
	silent   atomic.Bool

	mu       sync.Mutex
	closed   time.Time
	upstream net.Conn
	done     chan struct{} // closed when the connection is torn down
	ended    bool
}

func (c *wireConn) meter() ConnMeter {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	return ConnMeter{ID: c.id, Opened: c.opened, Closed: closed, Up: c.up.Load(), Down: c.down.Load(), Silent: c.silent.Load()}
}

// serve relays the connection until it ends.
func (c *wireConn) serve(w *Wire) {
	defer w.forget(c)
	defer c.close()
	up, err := net.DialTimeout("tcp", w.cfg.Target, dialTimeout)
	if err != nil {
		c.reset() // the far end is down: the client sees a reset
		return
	}
	c.mu.Lock()
	c.upstream = up
	ended := c.ended
	c.mu.Unlock()
	if ended {
		_ = up.Close()
		return
	}
	if c.silent.Load() {
		_ = up.Close()
	}
	lanes := []*lane{
		{src: c.client, dst: up, link: &w.up, shape: w.shape(true), client: &c.up, total: &w.upBytes, countOnRead: true},
		{src: up, dst: c.client, link: &w.down, shape: w.shape(false), client: &c.down, total: &w.dnBytes},
	}
	var wg sync.WaitGroup
	for _, l := range lanes {
		l.silent, l.done, l.q = &c.silent, c.done, make(chan segment, 1024)
		wg.Add(2)
		go func() {
			defer wg.Done()
			// A failed end fails the connection; a silent one lasts until
			// its client gives up.
			if err := l.read(); err != nil && (l == lanes[0] || !c.silent.Load()) {
				c.close()
			}
		}()
		go func() {
			defer wg.Done()
			if err := l.write(); err != nil {
				c.close()
			}
		}()
	}
	// Both ends closed their sending side: the connection is over. A
	// silent connection lasts until its client gives up.
	go func() {
		wg.Wait()
		c.close()
	}()
	<-c.done
	wg.Wait()
}

// silence swallows the connection in a black hole: the upstream side is
// closed (what reached the far end is handled, its reply lost), the
// client's side stays open and hears nothing.
func (c *wireConn) silence() {
	if c.silent.Swap(true) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.upstream != nil {
		_ = c.upstream.Close()
	}
}

// reset tears the connection down with a TCP reset, as a refused link
// does.
func (c *wireConn) reset() {
	if tc, ok := c.client.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.close()
}

// close ends the connection both ways; safe to call more than once.
func (c *wireConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	c.ended = true
	c.closed = time.Now()
	close(c.done)
	_ = c.client.Close()
	if c.upstream != nil {
		_ = c.upstream.Close()
	}
}
