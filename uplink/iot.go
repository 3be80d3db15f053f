package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// IoTConfig configures the AWS IoT Core credentials provider: the gateway
// proves its identity with its X.509 thing certificate over mutual TLS and
// receives temporary credentials for the IAM role behind a role alias
// (https://docs.aws.amazon.com/iot/latest/developerguide/authorizing-direct-aws.html).
type IoTConfig struct {
	// Endpoint is the account's credentials provider host, from
	// `aws iot describe-endpoint --endpoint-type iot:CredentialProvider`,
	// e.g. c2abc123.credentials.iot.eu-west-1.amazonaws.com (a host[:port],
	// or an https:// URL).
	Endpoint string
	// RoleAlias names the IoT role alias that points at the IAM role.
	RoleAlias string
	// ThingName is the IoT thing the certificate is attached to, sent as
	// x-amzn-iot-thingname (policies may use it as a variable).
	ThingName string
	// CertFile and KeyFile are the PEM thing certificate and private key.
	// They are read on every refresh, so a rotated certificate is used
	// without a restart.
	CertFile, KeyFile string
	// CAFile is an optional PEM root for the endpoint's server certificate;
	// empty uses the system roots.
	CAFile string
}

// iotExpiryWindow refreshes credentials this long before they expire (they
// last one hour by default), so a call never carries an expired token even
// on a slow link.
const iotExpiryWindow = 5 * time.Minute

// iotSnippet bounds how much of an error reply goes into an error message.
const iotSnippet = 200

// iotProvider is an aws.CredentialsProvider; wrap it in a cache.
type iotProvider struct {
	cfg IoTConfig
	url string
}

func newIoTProvider(cfg IoTConfig) (*iotProvider, error) {
	switch {
	case cfg.Endpoint == "":
		return nil, fmt.Errorf("iot credentials: no endpoint")
	case cfg.RoleAlias == "":
		return nil, fmt.Errorf("iot credentials: no role alias")
	case cfg.ThingName == "":
		return nil, fmt.Errorf("iot credentials: no thing name")
	case cfg.CertFile == "" || cfg.KeyFile == "":
		return nil, fmt.Errorf("iot credentials: no certificate or key file")
	}
	base := cfg.Endpoint
	if !strings.Contains(base, "://") {
		base = "https://" + base
	}
	p := &iotProvider{cfg: cfg, url: strings.TrimRight(base, "/") + "/role-aliases/" + url.PathEscape(cfg.RoleAlias) + "/credentials"}
	// Fail fast on a typo in a path; files are read again on every refresh.
	if _, err := p.httpClient(); err != nil {
		return nil, err
	}
	return p, nil
}

// newIoTCredentialsCache wraps p so that credentials are fetched once and
// refreshed before they expire.
func newIoTCredentialsCache(p aws.CredentialsProvider) *aws.CredentialsCache {
	return aws.NewCredentialsCache(identitySource{p}, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = iotExpiryWindow
		// Spread a fleet's refreshes by up to a minute of the window.
		o.ExpiryWindowJitterFrac = 0.2
	})
}

func (p *iotProvider) httpClient() (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(p.cfg.CertFile, p.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("iot credentials: load certificate %s and key %s: %w", p.cfg.CertFile, p.cfg.KeyFile, err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if p.cfg.CAFile != "" {
		pem, err := os.ReadFile(p.cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("iot credentials: read ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("iot credentials: ca file %s: no PEM certificate", p.cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   tlsTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		// One request an hour: keep no idle connection.
		DisableKeepAlives: true,
	}
	return &http.Client{Transport: tr, Timeout: callTimeout}, nil
}

type iotReply struct {
	Credentials struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
		SessionToken    string `json:"sessionToken"`
		Expiration      string `json:"expiration"`
	} `json:"credentials"`
}

// Retrieve fetches temporary credentials. Errors name the endpoint and the
// HTTP status with the start of the reply; never a secret.
func (p *iotProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	hc, err := p.httpClient()
	if err != nil {
		return aws.Credentials{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("iot credentials: %w", err)
	}
	req.Header.Set("x-amzn-iot-thingname", p.cfg.ThingName)
	resp, err := hc.Do(req)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("iot credentials: get %s: %w", p.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("iot credentials: get %s: read reply: %w", p.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("iot credentials: get %s: http %d: %s", p.url, resp.StatusCode, snippet(body))
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			// The provider is busy or failing, the certificate is not refused.
			return aws.Credentials{}, &sourceUnavailable{code: fmt.Sprintf("iot http %d", resp.StatusCode), err: err}
		}
		return aws.Credentials{}, err
	}
	var r iotReply
	if err := json.Unmarshal(body, &r); err != nil {
		// The reply may hold secrets: say what is wrong, not what it says.
		return aws.Credentials{}, fmt.Errorf("iot credentials: get %s: decode reply (%d bytes): %w", p.url, len(body), err)
	}
	c := r.Credentials
	if c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "" {
		return aws.Credentials{}, fmt.Errorf("iot credentials: get %s: reply lacks accessKeyId, secretAccessKey or sessionToken", p.url)
	}
	exp, err := time.Parse(time.RFC3339, c.Expiration)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("iot credentials: get %s: expiration %q: %w", p.url, c.Expiration, err)
	}
	return aws.Credentials{
		AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		Source: "IoTCredentialsProvider", CanExpire: true, Expires: exp,
	}, nil
}

// snippet is the start of an error reply, on one line.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > iotSnippet {
		s = s[:iotSnippet] + "..."
	}
	return s
}
