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
		{name: "timeout", err: fmt.Errorf("send: %w", context.DeadlineExceeded), code: "timeout"},
		{name: "net timeout", err: &net.OpError{Op: "read", Err: timeoutErr{}}, code: "timeout"},
		{name: "connection reset", err: &net.OpError{Op: "read", Err: syscall.ECONNRESET}, code: "connection"},
		{name: "connection refused", err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, code: "connection"},
		{name: "dns failure", err: &net.DNSError{Err: "no such host", Name: "kinesis.eu-west-1.amazonaws.com"}, code: "unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			var pe *PermanentError
			var re *RetryableError
			switch {
			case tt.permanent && !errors.As(got, &pe):
				t.Fatalf("classify = %v, want PermanentError", got)
			case !tt.permanent && !errors.As(got, &re):
				t.Fatalf("classify = %v, want RetryableError", got)
			case re != nil && re.Throttle != tt.throttle:
				t.Errorf("throttle = %v, want %v", re.Throttle, tt.throttle)
			}
			if c := errCode(got); c != tt.code {
				t.Errorf("code = %q, want %q", c, tt.code)
			}
			if !errors.Is(got, tt.err) && !errors.Is(got, errors.Unwrap(tt.err)) {
				t.Errorf("classify lost the cause: %v", got)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
