package uplink

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// wireCounter counts the bytes an HTTP transport writes to and reads from
// its connections: request lines, headers and bodies, status lines, and,
// over HTTPS, TLS handshakes and record framing. Connections to a proxy are
// counted too. It is what the data plan pays for, less TCP/IP headers.
//
// It also watches for dead connections while calls are outstanding (see
// replySilence), which is what HTTP/2 pings did before, without their
// bytes: an idle connection is never probed.
type wireCounter struct {
	sent, received atomic.Uint64

	mu    sync.Mutex
	calls int                        // calls outstanding
	conns map[*countingConn]struct{} // open connections
}

// replySilence is how long a connection may receive nothing while a call is
// outstanding before it is taken for dead and closed, failing its calls. A
// live Kinesis answers in tens of milliseconds, and while a large body
// uploads the server's flow-control updates keep arriving; in a dead zone
// packets vanish and nothing else would ever tell. It replaces HTTP/2 pings
// (4 s idle, then 4 s for the reply), which cost ~80 B a probe at the TLS
// socket and, with linger = "10s", probed twice between every two calls; the
// dead connection is noticed as fast as they noticed it.
const replySilence = 8 * time.Second

// dial returns a DialContext for a transport: connections opened with
// connect, counted, and watched while calls are outstanding. A probe's
// connect is repeated while it has no answer (redial).
func (w *wireCounter) dial(connect dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var (
			c   net.Conn
			err error
		)
		if isProbe(ctx) {
			c, err = redial(ctx, connect, network, addr)
		} else {
			c, err = connect(ctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		cc := &countingConn{Conn: c, w: w}
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.conns == nil {
			w.conns = map[*countingConn]struct{}{}
		}
		w.conns[cc] = struct{}{}
		if w.calls > 0 {
			_ = c.SetReadDeadline(time.Now().Add(replySilence))
		}
		return cc, nil
	}
}

// begin notes a call going out: from now on every connection must hear from
// the server within replySilence. The returned function notes its end.
func (w *wireCounter) begin() (end func()) {
	w.mu.Lock()
	w.calls++
	if w.calls == 1 {
		for c := range w.conns {
			_ = c.Conn.SetReadDeadline(time.Now().Add(replySilence))
		}
	}
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.calls--
			if w.calls == 0 {
				for c := range w.conns {
					_ = c.Conn.SetReadDeadline(time.Time{})
				}
			}
		})
	}
}

// heard extends c's deadline after it received something, while calls are
// outstanding.
func (w *wireCounter) heard(c *countingConn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.calls > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(replySilence))
	}
}

type countingConn struct {
	net.Conn
	w *wireCounter
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.w.received.Add(uint64(n))
		c.w.heard(c)
	}
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.w.sent.Add(uint64(n))
	return n, err
}

func (c *countingConn) Close() error {
	c.w.mu.Lock()
	delete(c.w.conns, c)
	c.w.mu.Unlock()
	return c.Conn.Close()
}

// endOnClose calls end when the body is read to its end or closed: the
// call is over only once its reply has arrived whole.
type endOnClose struct {
	io.ReadCloser
	end func()
}

func (b *endOnClose) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.end()
	}
	return n, err
}

func (b *endOnClose) Close() error {
	b.end()
	return b.ReadCloser.Close()
}

// wireOf returns the counter of a client built by NewClient, or nil.
func wireOf(api API) *wireCounter {
	c, ok := api.(*kinesis.Client)
	if !ok {
		return nil
	}
	if hc, ok := c.Options().HTTPClient.(*httpClient); ok {
		return hc.wire
	}
	return nil
}
