package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// ClientConfig says where the Kinesis client connects and how it
// authenticates.
type ClientConfig struct {
	// Region of the stream, e.g. "eu-west-1". Empty falls back to
	// AWS_REGION, then AWS_DEFAULT_REGION; the shared config file's region
	// is not read.
	Region string
	// Endpoint overrides the service endpoint, e.g. http://127.0.0.1:4567
	// for kinesis-mock or kinesalite. Empty uses the regional AWS endpoint.
	Endpoint string
	// IoT, if set, takes credentials from the AWS IoT Core credentials
	// provider with the gateway's X.509 thing certificate instead of the
	// environment and shared files (see NewClient).
	IoT *IoTConfig

	// sdkHeaders keeps the SDK's telemetry headers (for measuring what
	// trimming saves).
	sdkHeaders bool
	// jsonBody sends PutRecords as JSON, as the SDK does, instead of CBOR
	// (for measuring what CBOR saves).
	jsonBody bool
	// env replaces the process environment and home directory (tests).
	env credsEnv
	// stsEndpoint overrides the STS endpoint of web identity (tests).
	stsEndpoint string
}

// HTTP timeouts sized for a cellular link: generous enough for a slow
// handshake, short enough that a dead connection is noticed within seconds
// rather than the kernel's many minutes. In a dead zone packets vanish:
// nothing is refused or reset, so only the client's own timers notice.
const (
	// dialTimeout bounds TCP connect; cellular RTTs can reach seconds.
	dialTimeout = 10 * time.Second
	// tlsTimeout bounds the TLS handshake: two round trips and a few KB of
	// certificates, under 2 s on a poor link (300 ms, 1 Mbit/s down). A
	// handshake that stalls in a dead zone is given up soon after.
	tlsTimeout = 5 * time.Second
	// responseHeaderTimeout bounds the wait for the reply once the request is
	// written: a 5 MiB upload counts against the overall timeout, not this.
	// Kinesis answers in tens of milliseconds.
	responseHeaderTimeout = 10 * time.Second
	// callTimeout bounds one whole HTTP exchange, including uploading up to
	// 5 MiB on a slow uplink (5 MiB at ~1 Mbit/s is ~40 s). MaxCallTime
	// allows for two: a credentials refresh (IoT, STS) and the call.
	callTimeout = 60 * time.Second
	// idleConnTimeout keeps the connection warm between fixes (one a second)
	// but lets NAT-expired connections go; carriers drop idle NAT entries
	// after tens of seconds to minutes.
	idleConnTimeout = 30 * time.Second
	// keepAlive probes detect half-open connections after a cell handover.
	keepAlive = 15 * time.Second
	// sessionCacheSize: TLS sessions kept for resumption, one per endpoint
	// host and a few spare.
	sessionCacheSize = 4
	// No HTTP/2 pings: a dead connection is noticed by the silence of the
	// server while a call is outstanding (replySilence, wire.go), for no
	// bytes, where pings cost ~80 B each on every idle gap over 4 s.
)

// NewClient builds a Kinesis client for a gateway.
//
// Credentials come from the first of these sources that is configured:
//   - the AWS IoT credentials provider, when cc.IoT is set;
//   - the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the
//     legacy AWS_ACCESS_KEY and AWS_SECRET_KEY), with AWS_SESSION_TOKEN;
//   - web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN (and
//     AWS_ROLE_SESSION_NAME), exchanged for temporary credentials with STS;
//   - static keys (aws_access_key_id, aws_secret_access_key,
//     aws_session_token) of profile AWS_PROFILE or "default" in the shared
//     credentials file (AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials),
//     then in the shared config file (AWS_CONFIG_FILE, ~/.aws/config).
//
// These are the parts of the SDK's default chain a gateway can use. SSO,
// credential_process and assume-role profiles are not supported: a gateway
// has no browser or person to log in, and the SDK package that brings them
// costs about 1.6 MB of an ARM binary. The EC2 and container metadata
// endpoints are never probed: a gateway has none, and probing
// 169.254.169.254 would stall start-up on every refresh. A malformed
// environment or shared file is an error here (shared files name file:line);
// no credentials at all is an error when the first call needs them, naming
// the sources tried. Secrets never appear in errors.
//
// AWS_CA_BUNDLE, if set, names a PEM file whose certificates replace the
// system roots for Kinesis and STS (as the SDK does).
//
// The HTTP transport honours HTTPS_PROXY, HTTP_PROXY and NO_PROXY
// (http.ProxyFromEnvironment; Go never proxies localhost or 127.0.0.1), and
// counts every byte it writes to and reads from its connections; an Uplink
// given this client reports them in Stats (BytesMeasured). Headers Kinesis
// does not need (User-Agent, X-Amz-User-Agent, Amz-Sdk-Invocation-Id,
// Amz-Sdk-Request, Accept-Encoding) are removed before signing: about 300 B
// per call on a metered link. Replies are small, so asking for gzip saves
// nothing. PutRecords goes as CBOR rather than JSON (cborPut): record bytes
// raw, not base64.
//
// The SDK's own retryer is limited to one attempt: the Uplink retries every
// failure itself, forever, with backoff capped at Config.MaxBackoff and with
// counters. Stacking the SDK's retries (3 attempts with their own backoff by
// default) under ours would multiply calls and bytes on a metered link,
// hide failures from the counters, and hold a batch for tens of seconds while
// newer records wait.
func NewClient(ctx context.Context, cc ClientConfig) (*kinesis.Client, error) {
	region := cc.env.region(cc.Region)
	if region == "" {
		return nil, fmt.Errorf("new kinesis client: no region (set region in the config or AWS_REGION)")
	}
	roots, err := caBundle(cc.env)
	if err != nil {
		return nil, fmt.Errorf("new kinesis client: %w", err)
	}
	creds, err := newCredentials(ctx, cc.env, cc.IoT, stsSettings{
		region:     region,
		httpClient: newHTTPClient(&wireCounter{}, roots), // not Kinesis traffic: not counted in Stats
		endpoint:   cc.stsEndpoint,
	})
	if err != nil {
		return nil, fmt.Errorf("new kinesis client: %w", err)
	}
	wire := &wireCounter{}
	return kinesis.New(kinesis.Options{
		Region:      region,
		Credentials: creds,
		HTTPClient:  &httpClient{Client: newHTTPClient(wire, roots), wire: wire},
		Retryer:     retry.AddWithMaxAttempts(retry.NewStandard(), 1),
	}, func(o *kinesis.Options) {
		if cc.Endpoint != "" {
			o.BaseEndpoint = aws.String(cc.Endpoint)
		}
		if !cc.sdkHeaders {
			o.APIOptions = append(o.APIOptions, addTrimHeaders)
		}
		if !cc.jsonBody {
			o.Protocol = newCBORPut(o.Protocol)
		}
	}), nil
}

// caBundle reads the PEM file AWS_CA_BUNDLE names, or returns nil (the
// system roots) if it is unset.
func caBundle(env credsEnv) (*x509.CertPool, error) {
	path := env.get("AWS_CA_BUNDLE")
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("AWS_CA_BUNDLE: %s: no PEM certificate", path)
	}
	return pool, nil
}

// httpClient is the HTTP client of a client from NewClient; New finds its
// counters through kinesis.Client.Options().HTTPClient.
type httpClient struct {
	*http.Client
	wire *wireCounter
}

// Do sends req. A call that got no reply (a timeout, a reset, a connection
// closed for its silence) drops every pooled connection, so the next call
// dials afresh instead of waiting on a connection that may be dead: a
// request that times out does not by itself retire its connection, and on
// HTTP/2 every call shares that one connection.
func (c *httpClient) Do(req *http.Request) (*http.Response, error) {
	end := c.wire.begin()
	resp, err := c.Client.Do(req)
	if err != nil {
		end()
		c.CloseIdleConnections()
		return resp, err
	}
	resp.Body = &endOnClose{ReadCloser: resp.Body, end: end}
	return resp, nil
}

// newHTTPClient builds the transport: proxy from the environment, cellular
// timeouts, connections counted and watched by w, roots (nil: the system's). Redirects are not followed: Kinesis sends none.
func newHTTPClient(w *wireCounter, roots *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
	tr := &http.Transport{
		Proxy:       http.ProxyFromEnvironment,
		DialContext: w.dial(d.DialContext),
		// A custom DialContext turns HTTP/2 off unless forced; where the
		// endpoint offers it, HPACK sends repeated headers as a few bytes.
		ForceAttemptHTTP2: true,
		// A session cache lets a new connection resume the last TLS session:
		// no certificate chain again, 2-4 KB less on every reconnect after an
		// outage or an idle close. Key exchanges: X25519 (P-256 for an
		// endpoint without it). Go's default leads with the post-quantum
		// hybrid X25519MLKEM768, whose key shares take 1,216 B up and 1,120 B
		// down: 2.3 KB more on every handshake, full or resumed, a third of a
		// new connection's bytes (TestReconnectResumesTLS). The trade: a
		// recording of today's traffic could be read by a future quantum
		// computer. What travels is truck positions, stale within hours,
		// and SigV4 requests, which carry a signature, never the secret key.
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots,
			ClientSessionCache: tls.NewLRUClientSessionCache(sessionCacheSize), CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}},
		TLSHandshakeTimeout:   tlsTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       idleConnTimeout,
		MaxIdleConns:          4,
		MaxIdleConnsPerHost:   2,
		// Replies are ~100 B of JSON per record: gzip saves nothing, and
		// "Accept-Encoding: gzip" costs 24 B on every request.
		DisableCompression: true,
	}
	return &http.Client{
		Timeout:       callTimeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// trimHeaders removes request headers Kinesis does not need. It runs in the
// finalize step just before signing, after the SDK has added them all, so
// the signature covers what is really sent.
type trimHeaders struct{}

// trimmedHeaders are the SDK's telemetry headers: the long user agent
// strings (~200 B), a per-call UUID, and retry attempt metadata.
var trimmedHeaders = [...]string{"X-Amz-User-Agent", "Amz-Sdk-Invocation-Id", "Amz-Sdk-Request"}

func (trimHeaders) ID() string { return "GPSAgentTrimHeaders" }

func (trimHeaders) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error) {
	if req, ok := in.Request.(*smithyhttp.Request); ok {
		for _, h := range trimmedHeaders {
			req.Header.Del(h)
		}
		// An empty User-Agent makes net/http send none (instead of its
		// default "Go-http-client/1.1"); SigV4 never signs it.
		req.Header.Set("User-Agent", "")
	}
	return next.HandleFinalize(ctx, in)
}

func addTrimHeaders(stack *middleware.Stack) error {
	return stack.Finalize.Insert(trimHeaders{}, "Signing", middleware.Before)
}
