package uplink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"

	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestClassify(t *testing.T) {
	api := func(code string) error {
		return fmt.Errorf("operation error Kinesis: PutRecords: %w", &smithy.GenericAPIError{Code: code, Message: "msg of " + code})
	}
	status := func(code int) error {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: errors.New("boom")}
	}
	tests := []struct {
		name      string
		err       error
		permanent bool
		throttle  bool
		offline   bool // nothing answered: the link is down
		code      string
	}{
		{name: "throughput exceeded", err: api("ProvisionedThroughputExceededException"), throttle: true, code: "ProvisionedThroughputExceededException"},
		{name: "kms throttling", err: api("KMSThrottlingException"), throttle: true, code: "KMSThrottlingException"},
		{name: "internal failure", err: api("InternalFailure"), code: "InternalFailure"},
		{name: "stream not found", err: api("ResourceNotFoundException"), permanent: true, code: "ResourceNotFoundException"},
		{name: "access denied", err: api("AccessDeniedException"), permanent: true, code: "AccessDeniedException"},
		{name: "kms disabled", err: api("KMSDisabledException"), permanent: true, code: "KMSDisabledException"},
		{name: "validation", err: api("ValidationException"), permanent: true, code: "ValidationException"},
		{name: "unknown code retried", err: api("SomethingNew"), code: "SomethingNew"},
		{name: "http 503", err: status(503), code: "http 503"},
		{name: "http 429", err: status(429), throttle: true, code: "http 429"},
		{name: "http 403", err: status(403), permanent: true, code: "http 403"},
		{name: "timeout", err: fmt.Errorf("send: %w", context.DeadlineExceeded), offline: true, code: "timeout"},
		{name: "net timeout", err: &net.OpError{Op: "read", Err: timeoutErr{}}, offline: true, code: "timeout"},
		{name: "tls handshake timeout", err: fmt.Errorf("net/http: %w", timeoutErr{}), offline: true, code: "timeout"},
		{name: "connection reset", err: &net.OpError{Op: "read", Err: syscall.ECONNRESET}, offline: true, code: "connection"},
		{name: "connection refused", err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, offline: true, code: "connection"},
		{name: "no route", err: &net.OpError{Op: "dial", Err: syscall.EHOSTUNREACH}, offline: true, code: "unreachable"},
		{name: "network unreachable", err: &net.OpError{Op: "dial", Err: syscall.ENETUNREACH}, offline: true, code: "unreachable"},
		{name: "dead pooled connection", err: errors.New("http2: client connection lost"), offline: true, code: "unreachable"},
		{name: "dns failure", err: &net.DNSError{Err: "no such host", Name: "kinesis.eu-west-1.amazonaws.com"}, offline: true, code: "unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind := "retryable"
			if tt.permanent {
				kind = "permanent"
			}
			got := wantClass(t, tt.err, kind, tt.code)
			var re *RetryableError
			if errors.As(got, &re) && re.Throttle != tt.throttle {
				t.Errorf("throttle = %v, want %v", re.Throttle, tt.throttle)
			}
			if offline(got) != tt.offline {
				t.Errorf("offline = %v, want %v", offline(got), tt.offline)
			}
		})
	}
}

// wantClass checks that classify(err) is of kind (retryable, permanent or
// credentials) with code, and keeps err as its cause; it returns it.
func wantClass(t *testing.T, err error, kind, code string) error {
	t.Helper()
	got := classify(err)
	var (
		re *RetryableError
		pe *PermanentError
		ce *CredentialsError
	)
	gotKind := "unclassified"
	switch {
	case errors.As(got, &ce):
		gotKind = "credentials"
	case errors.As(got, &pe):
		gotKind = "permanent"
	case errors.As(got, &re):
		gotKind = "retryable"
	}
	if gotKind != kind {
		t.Errorf("classify = %v: %s, want %s", got, gotKind, kind)
	}
	if c := errCode(got); c != code {
		t.Errorf("code = %q, want %q (%v)", c, code, got)
	}
	if !errors.Is(got, err) && !errors.Is(got, errors.Unwrap(err)) {
		t.Errorf("classify lost the cause: %v", got)
	}
	return got
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
