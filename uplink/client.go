package uplink

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// ClientConfig says where the Kinesis client connects and how it
// authenticates.
type ClientConfig struct {
	// Region of the stream, e.g. "eu-west-1". Empty falls back to the SDK's
	// sources (AWS_REGION, shared config).
	Region string
	// Endpoint overrides the service endpoint, e.g. http://127.0.0.1:4567
	// for kinesis-mock or kinesalite. Empty uses the regional AWS endpoint.
	Endpoint string
	// IoT, if set, takes credentials from the AWS IoT Core credentials
	// provider with the gateway's X.509 thing certificate instead of the
	// SDK's default chain.
	IoT *IoTConfig

	// sdkHeaders keeps the SDK's telemetry headers (for measuring what
	// trimming saves).
	sdkHeaders bool
}

// HTTP timeouts sized for a cellular link: generous enough for a slow
// handshake, short enough that a dead connection is noticed within a minute
// rather than the kernel's many minutes.
const (
	// dialTimeout bounds TCP connect; cellular RTTs can reach seconds.
	dialTimeout = 10 * time.Second
	// tlsTimeout bounds the TLS handshake.
	tlsTimeout = 10 * time.Second
	// responseHeaderTimeout bounds the wait for the reply once the request is
	// written: a 5 MiB upload counts against the overall timeout, not this.
	responseHeaderTimeout = 20 * time.Second
	// callTimeout bounds one whole HTTP exchange, including uploading up to
	// 5 MiB on a slow uplink (5 MiB at ~1 Mbit/s is ~40 s).
	callTimeout = 60 * time.Second
	// idleConnTimeout keeps the connection warm between fixes (one a second)
	// but lets NAT-expired connections go; carriers drop idle NAT entries
	// after tens of seconds to minutes.
	idleConnTimeout = 30 * time.Second
	// keepAlive probes detect half-open connections after a cell handover.
	keepAlive = 15 * time.Second
)

// NewClient builds a Kinesis client for a gateway.
//
// Credentials come from the AWS IoT credentials provider when cc.IoT is set,
// otherwise from the SDK default chain (environment, shared config and
// credentials files, web identity, SSO, process) with the EC2 instance
// metadata service (IMDS) disabled: a gateway has none, and probing
// 169.254.169.254 would stall start-up on every credential refresh.
//
// The HTTP transport honours HTTPS_PROXY, HTTP_PROXY and NO_PROXY
// (http.ProxyFromEnvironment; Go never proxies localhost or 127.0.0.1), and
// counts every byte it writes to and reads from its connections; an Uplink
// given this client reports them in Stats (BytesMeasured). Headers Kinesis
// does not need (User-Agent, X-Amz-User-Agent, Amz-Sdk-Invocation-Id,
// Amz-Sdk-Request, Accept-Encoding) are removed before signing: about 300 B
// per call on a metered link. Replies are small JSON, so asking for gzip
// saves nothing.
//
// The SDK's own retryer is limited to one attempt: the Uplink retries every
// failure itself, forever, with backoff capped at Config.MaxBackoff and with
// counters. Stacking the SDK's retries (3 attempts with their own backoff by
// default) under ours would multiply calls and bytes on a metered link,
// hide failures from the counters, and hold a batch for tens of seconds while
// newer records wait.
func NewClient(ctx context.Context, cc ClientConfig) (*kinesis.Client, error) {
	wire := &wireCounter{}
	opts := []func(*config.LoadOptions) error{
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
		config.WithHTTPClient(newHTTPClient(wire)),
		config.WithRetryer(func() aws.Retryer {
			return retry.AddWithMaxAttempts(retry.NewStandard(), 1)
		}),
	}
	if cc.Region != "" {
		opts = append(opts, config.WithRegion(cc.Region))
	}
	if cc.IoT != nil {
		p, err := newIoTProvider(*cc.IoT)
		if err != nil {
			return nil, fmt.Errorf("new kinesis client: %w", err)
		}
		opts = append(opts, config.WithCredentialsProvider(newIoTCredentialsCache(p)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("new kinesis client: load aws config: %w", err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("new kinesis client: no region (set region in the config or AWS_REGION)")
	}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		// Wrap what the config resolved (AWS_CA_BUNDLE replaces the client
		// with a copy), so that New finds the counters.
		o.HTTPClient = &httpClient{HTTPClient: o.HTTPClient, wire: wire}
		if cc.Endpoint != "" {
			o.BaseEndpoint = aws.String(cc.Endpoint)
		}
		if !cc.sdkHeaders {
			o.APIOptions = append(o.APIOptions, addTrimHeaders)
		}
	}), nil
}

// httpClient is the HTTP client of a client from NewClient; New finds its
// counters through kinesis.Client.Options().HTTPClient.
type httpClient struct {
	kinesis.HTTPClient
	wire *wireCounter
}

// newHTTPClient builds the transport: proxy from the environment, cellular
// timeouts, connections counted by w. It stays an *awshttp.BuildableClient,
// which the SDK needs to add AWS_CA_BUNDLE to its roots.
func newHTTPClient(w *wireCounter) *awshttp.BuildableClient {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
	return awshttp.NewBuildableClient().
		WithTimeout(callTimeout).
		WithTransportOptions(func(tr *http.Transport) {
			tr.Proxy = http.ProxyFromEnvironment
			tr.DialContext = w.dial(d)
			// A custom DialContext turns HTTP/2 off unless forced; where
			// the endpoint offers it, HPACK sends repeated headers as a
			// few bytes.
			tr.ForceAttemptHTTP2 = true
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{}
			}
			tr.TLSClientConfig.MinVersion = tls.VersionTLS12
			tr.TLSHandshakeTimeout = tlsTimeout
			tr.ResponseHeaderTimeout = responseHeaderTimeout
			tr.IdleConnTimeout = idleConnTimeout
			tr.MaxIdleConns = 4
			tr.MaxIdleConnsPerHost = 2
			// Replies are ~100 B of JSON per record: gzip saves nothing,
			// and "Accept-Encoding: gzip" costs 24 B on every request.
			tr.DisableCompression = true
		})
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
