package uplinktest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithy "github.com/aws/smithy-go"
)

func putN(t *testing.T, c *kinesis.Client, stream string, n int) (*kinesis.PutRecordsOutput, error) {
	t.Helper()
	var entries []types.PutRecordsRequestEntry
	for i := range n {
		entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(fmt.Sprint(i)), PartitionKey: aws.String("k")})
	}
	return c.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
}

func TestProxyModes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesalite")
	}
	l := StartKinesalite(t, "s", 1)

	t.Run("records per second", func(t *testing.T) {
		p := NewProxy(t, l.Endpoint, 1)
		p.Set(Faults{RecordsPerSecond: 500})
		c := (&Local{Endpoint: p.URL}).client()
		start := time.Now()
		var ok, throttled int
		for range 4 {
			out, err := putN(t, c, "s", 300)
			if err != nil {
				t.Fatalf("put records: %v", err)
			}
			for _, e := range out.Records {
				switch aws.ToString(e.ErrorCode) {
				case "":
					ok++
				case "ProvisionedThroughputExceededException":
					throttled++
				default:
					t.Fatalf("error code %q", aws.ToString(e.ErrorCode))
				}
			}
		}
		elapsed := time.Since(start).Seconds()
		// One second's worth of tokens at the start, then 500/s.
		if limit := 500 + int(elapsed*500) + 1; ok > limit || ok < 500 {
			t.Errorf("%d entries let through in %.2f s, want 500..%d", ok, elapsed, limit)
		}
		c2 := p.Counts()
		if c2.RateAdmitted != ok || c2.RateLimited != throttled || ok+throttled != 1200 {
			t.Errorf("counts %+v, client saw %d ok, %d throttled", c2, ok, throttled)
		}
		if got := len(l.ReadAll(t, "s")); got != ok {
			t.Errorf("stream holds %d records, %d were let through", got, ok)
		}
	})

	t.Run("error code", func(t *testing.T) {
		p := NewProxy(t, l.Endpoint, 1)
		p.Set(Faults{ErrorCode: "AccessDeniedException", ErrorMessage: "User: arn:aws:iam::1:user/truck is not authorized"})
		c := (&Local{Endpoint: p.URL}).client()
		_, err := putN(t, c, "s", 1)
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "AccessDeniedException" || !strings.Contains(api.ErrorMessage(), "not authorized") {
			t.Fatalf("put records = %v, want AccessDeniedException with its message", err)
		}
		p.Set(Faults{})
		if _, err := putN(t, c, "s", 1); err != nil {
			t.Fatalf("after the fault is off: %v", err)
		}
		if c := p.Counts(); c.Errors != 1 || c.Forwarded != 1 {
			t.Errorf("counts %+v, want 1 error, 1 forwarded", c)
		}
	})
}

// The TLS proxy offers HTTP/2; in a black hole a call on an open connection
// gets no answer, nor does one on a connection opened during the hole; after
// the hole a new connection works and the old ones stay silent.
func TestTLSProxyBlackHole(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesalite")
	}
	l := StartKinesalite(t, "s", 1)
	p := NewTLSProxy(t, l.Endpoint, 1)
	roots := caPool(t, p.CAFile)
	newClient := func() *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 2 * time.Second}
	}
	get := func(c *http.Client) (*http.Response, error) {
		resp, err := c.Get(p.URL + "/")
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	before := newClient()
	if resp, err := get(before); err != nil || resp.ProtoMajor != 2 {
		t.Fatalf("before the hole: %v (proto %v), want an HTTP/2 answer", err, resp)
	}
	p.Set(Faults{BlackHole: true})
	if _, err := get(before); err == nil {
		t.Errorf("open connection answered in a black hole")
	}
	if _, err := get(newClient()); err == nil {
		t.Errorf("new connection answered in a black hole")
	}
	raw, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "https://"))
	if err != nil {
		t.Fatalf("connect in the hole: %v (connections are accepted, then silent)", err)
	}
	defer raw.Close()
	// The kernel completes a connect before the proxy accepts it: wait for
	// the accept, or the hole may be over by then.
	for deadline := time.Now().Add(5 * time.Second); p.Counts().AcceptedInHole < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("connection not accepted: %+v", p.Counts())
		}
	}
	p.Set(Faults{})
	if resp, err := get(newClient()); err != nil || resp.ProtoMajor != 2 {
		t.Errorf("after the hole, a new connection: %v", err)
	}
	raw.SetDeadline(time.Now().Add(time.Second))
	if err := tls.Client(raw, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}).Handshake(); err == nil {
		t.Errorf("a connection opened in the hole answered after it")
	}
	if c := p.Counts(); c.OpenAtHole != 1 || c.AcceptedInHole != 2 || c.HTTP2 != 2 {
		t.Errorf("counts %+v, want 1 connection silenced when the hole began, 2 accepted in it, 2 HTTP/2 requests", c)
	}
}
