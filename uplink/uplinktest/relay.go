package uplinktest

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Relay is a TCP relay on 127.0.0.1 that counts the bytes passing each way
// and keeps the first bytes the client sent: an independent witness of what
// a client really puts on the wire.
type Relay struct {
	// Addr is the relay's host:port.
	Addr string

	up, down atomic.Int64
	mu       sync.Mutex
	head     bytes.Buffer // the first headKeep bytes sent upstream
}

const headKeep = 64 << 10

// NewRelay starts a relay to target (host:port). It is closed on test
// cleanup.
func NewRelay(t testing.TB, target string) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	r := &Relay{Addr: ln.Addr().String()}
	serveEach(t, ln, func(c net.Conn, track func(net.Conn)) {
		u, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			return
		}
		track(u)
		done := make(chan struct{})
		go func() { defer close(done); r.pipe(u, c, &r.up, true) }()
		r.pipe(c, u, &r.down, false)
		<-done
	})
	return r
}

// serveEach accepts on ln until test cleanup and runs handle for each
// connection in a goroutine of its own. Cleanup closes ln, each accepted
// connection and each one handle passed to track, then waits for every
// handle to return.
func serveEach(t testing.TB, ln net.Listener, handle func(c net.Conn, track func(net.Conn))) {
	var wg sync.WaitGroup
	var conns sync.Map
	track := func(c net.Conn) { conns.Store(c, nil) }
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Add(1)
			go func() { defer wg.Done(); handle(c, track) }()
		}
	}()
}

func (r *Relay) pipe(dst, src net.Conn, n *atomic.Int64, keep bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			n.Add(int64(k))
			if keep {
				r.mu.Lock()
				if rest := headKeep - r.head.Len(); rest > 0 {
					r.head.Write(buf[:min(k, rest)])
				}
				r.mu.Unlock()
			}
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF or a closed connection: close both ways
		}
	}
}

// Bytes returns the bytes relayed from the client upstream and back.
func (r *Relay) Bytes() (up, down int64) { return r.up.Load(), r.down.Load() }

// Head returns the first bytes (up to 64 KiB) the clients sent.
func (r *Relay) Head() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.head.Bytes())
}
