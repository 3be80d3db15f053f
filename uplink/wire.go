package uplink

import (
	"context"
	"net"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// wireCounter counts the bytes an HTTP transport writes to and reads from
// its connections: request lines, headers and bodies, status lines, and,
// over HTTPS, TLS handshakes and record framing. Connections to a proxy are
// counted too. It is what the data plan pays for, less TCP/IP headers.
type wireCounter struct {
	sent, received atomic.Uint64
}

func (w *wireCounter) dial(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, w: w}, nil
	}
}

type countingConn struct {
	net.Conn
	w *wireCounter
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.received.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.w.sent.Add(uint64(n))
	return n, err
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
