package uplinktest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// countingConn counts what a client's socket sends and receives: the
// client's own view, to hold the Wire's meter against.
type countingConn struct {
	net.Conn
	up, down *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.down.Add(int64(n))
	return n, err
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.up.Add(int64(n))
	return n, err
}

// headerTap keeps the last reply's headers and body size.
type headerTap struct {
	rt   http.RoundTripper
	mu   sync.Mutex
	last http.Header
}

func (h *headerTap) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := h.rt.RoundTrip(r)
	if err == nil {
		h.mu.Lock()
		h.last = resp.Header.Clone()
		h.mu.Unlock()
	}
	return resp, err
}

// tlsKinesis is a Kinesis client for a TLS link trusting only its CA, as
// the agent does with AWS_CA_BUNDLE, counting its socket's bytes.
func tlsKinesis(t *testing.T, l *Link, up, down *atomic.Int64) (*kinesis.Client, *headerTap) {
	t.Helper()
	pem, err := os.ReadFile(l.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("CAFile holds no certificate")
	}
	var d net.Dialer
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{c, up, down}, nil
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	tap := &headerTap{rt: tr}
	return kinesis.New(kinesis.Options{
		Region: Region, BaseEndpoint: aws.String(l.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDLOCAL", "local-secret", ""),
		HTTPClient:  &http.Client{Transport: tap, Timeout: 10 * time.Second},
	}), tap
}

var seq56 = regexp.MustCompile(`^[0-9]{56}$`)

// Over a TLS link HTTP/2 is negotiated, the meter counts exactly the bytes
// the client's socket saw both ways (handshake included) on one
// connection, and replies carry what AWS's do.
func TestLinkTLSMeters(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesalite")
	}
	tests := []struct {
		name  string
		start func(testing.TB, string, int) *Local
	}{
		{"kinesalite", StartKinesalite},
		{"kinesis-mock", StartKinesisMock},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			local := tt.start(t, "s", 1)
			l := NewLink(t, local.Endpoint, LinkOptions{Profile: LTE(), TLS: true})
			var up, down atomic.Int64
			c, tap := tlsKinesis(t, l, &up, &down)
			for i := range 3 {
				out, err := c.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
					{Data: []byte(`{"lat":52.1,"lon":4.3}`), PartitionKey: aws.String("truck-1")}}})
				if err != nil {
					t.Fatalf("put %d: %v", i, err)
				}
				if sn := aws.ToString(out.Records[0].SequenceNumber); !seq56.MatchString(sn) {
					t.Errorf("sequence number %q, want 56 digits", sn)
				}
			}
			tap.mu.Lock()
			h := tap.last
			tap.mu.Unlock()
			for _, k := range []string{"X-Amzn-Requestid", "X-Amz-Id-2"} {
				if h.Get(k) == "" {
					t.Errorf("reply lacks %s: %v", k, h)
				}
			}
			if h.Get("Keep-Alive") != "" || h.Get("Connection") != "" {
				t.Errorf("reply carries HTTP/1.1 connection headers: %v", h)
			}
			if pc := l.Proxy.Counts(); pc.HTTP2 != 3 {
				t.Errorf("proxy counts %+v, want 3 requests over HTTP/2", pc)
			}
			ok := eventually(func() bool {
				m := l.Meter()
				return m.Up == up.Load() && m.Down == down.Load()
			})
			m := l.Meter()
			t.Logf("3 calls: %d B up, %d B down at the socket", m.Up, m.Down)
			if !ok || m.Opened != 1 {
				t.Errorf("meter %+v, client counted %d up, %d down on one connection", m, up.Load(), down.Load())
			}
			if m.Up < 2000 || m.Down < 3000 {
				t.Errorf("meter %+v: too few bytes for a TLS handshake and 3 calls", m)
			}
			conns := l.Conns()
			if len(conns) != 1 || conns[0].Up != m.Up || conns[0].Down != m.Down || !conns[0].Closed.IsZero() {
				t.Errorf("conns %+v, want one open connection holding all of %+v", conns, m)
			}
		})
	}
}
