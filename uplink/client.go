package uplink

import (
	"context"
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
)

// ClientConfig says where the Kinesis client connects.
type ClientConfig struct {
	// Region of the stream, e.g. "eu-west-1". Empty falls back to the SDK's
	// sources (AWS_REGION, shared config).
	Region string
	// Endpoint overrides the service endpoint, e.g. http://127.0.0.1:4567
	// for kinesis-mock or kinesalite. Empty uses the regional AWS endpoint.
	Endpoint string
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
// Credentials come from the SDK default chain (environment, shared config
// and credentials files, web identity, SSO, process), but the EC2 instance
// metadata service (IMDS) is disabled: a gateway has none, and probing
// 169.254.169.254 would stall start-up on every credential refresh.
//
// The SDK's own retryer is limited to one attempt: the Uplink retries every
// failure itself, forever, with backoff capped at Config.MaxBackoff and with
// counters. Stacking the SDK's retries (3 attempts with their own backoff by
// default) under ours would multiply calls and bytes on a metered link,
// hide failures from the counters, and hold a batch for tens of seconds while
// newer records wait.
func NewClient(ctx context.Context, cc ClientConfig) (*kinesis.Client, error) {
	httpClient := awshttp.NewBuildableClient().
		WithTimeout(callTimeout).
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = dialTimeout
			d.KeepAlive = keepAlive
		}).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = tlsTimeout
			t.ResponseHeaderTimeout = responseHeaderTimeout
			t.IdleConnTimeout = idleConnTimeout
			t.MaxIdleConnsPerHost = 2
		})
	opts := []func(*config.LoadOptions) error{
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.AddWithMaxAttempts(retry.NewStandard(), 1)
		}),
	}
	if cc.Region != "" {
		opts = append(opts, config.WithRegion(cc.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("new kinesis client: load aws config: %w", err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("new kinesis client: no region (set region in the config or AWS_REGION)")
	}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		if cc.Endpoint != "" {
			o.BaseEndpoint = aws.String(cc.Endpoint)
		}
	}), nil
}
