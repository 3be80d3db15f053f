package uplinktest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
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

// headerTap keeps the last reply's headers and body.
type headerTap struct {
	rt   http.RoundTripper
	mu   sync.Mutex
	last http.Header
	body []byte
}

func (h *headerTap) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := h.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	h.mu.Lock()
	h.last, h.body = resp.Header.Clone(), body
	h.mu.Unlock()
	return resp, err
}

// reply returns the last reply's headers and body.
func (h *headerTap) reply() (http.Header, []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last, h.body
}

// awsShaped reports how a reply differs from what AWS sends.
func awsShaped(h http.Header, body []byte) []string {
	var wrong []string
	for _, k := range []string{"X-Amzn-Requestid", "X-Amz-Id-2"} {
		if h.Get(k) == "" {
			wrong = append(wrong, "no "+k)
		}
	}
	if h.Get("Keep-Alive") != "" || h.Get("Connection") != "" {
		wrong = append(wrong, "HTTP/1.1 connection headers")
	}
	if bytes.Contains(body, []byte("null")) {
		wrong = append(wrong, "null members: "+string(body))
	}
	return wrong
}

// tlsKinesis is a Kinesis client for a TLS link trusting only its CA, as
// the agent does with AWS_CA_BUNDLE, counting its socket's bytes.
func tlsKinesis(t *testing.T, l *Link, up, down *atomic.Int64) (*kinesis.Client, *headerTap) {
	t.Helper()
	roots := caPool(t, l.CAFile)
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
			if tt.name == "kinesalite" {
				handshakeBytes(t, local)
			}
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
			if wrong := awsShaped(tap.reply()); wrong != nil {
				t.Errorf("PutRecords reply unlike AWS's: %q", wrong)
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

			// Replies the proxy makes itself look the same.
			l.Proxy.Set(Faults{Throttle: 1})
			if _, err := c.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{
				{Data: []byte("x"), PartitionKey: aws.String("k")}}}); err == nil {
				t.Fatal("throttled call succeeded")
			}
			if wrong := awsShaped(tap.reply()); wrong != nil {
				t.Errorf("injected reply unlike AWS's: %q", wrong)
			}
		})
	}
}

// handshakeBytes: a TLS handshake alone crosses with the certificate chain
// an AWS endpoint sends (leaf and intermediate, RSA 2048), so it costs
// about what a truck pays for one: kilobytes, not the few hundred bytes of
// a bare self-signed ECDSA certificate.
func handshakeBytes(t *testing.T, local *Local) {
	t.Helper()
	l := NewLink(t, local.Endpoint, LinkOptions{TLS: true})
	roots := caPool(t, l.CAFile)
	c, err := tls.Dial("tcp", l.Wire.Addr, &tls.Config{RootCAs: roots, ServerName: "kinesis.us-east-1.amazonaws.com", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	state := c.ConnectionState()
	c.Close()
	if !eventually(func() bool { return l.Meter().Open == 0 }) {
		t.Fatalf("connection still open: %+v", l.Meter())
	}
	m := l.Meter()
	t.Logf("TLS %x handshake (%s): %d B up, %d B down", state.Version, state.NegotiatedProtocol, m.Up, m.Down)
	if state.Version != tls.VersionTLS13 || state.NegotiatedProtocol != "h2" || m.Down < 3000 || m.Up < 250 {
		t.Errorf("handshake: version %x, protocol %q, meter %+v; want TLS 1.3, h2, >= 3,000 B down and >= 250 B up", state.Version, state.NegotiatedProtocol, m)
	}
}

// caPool reads the CA a TLS proxy wrote, as AWS_CA_BUNDLE would.
func caPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", file)
	}
	return roots
}
