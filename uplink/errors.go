package uplink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// ErrNoStream is returned by Run when Config.Stream is empty.
var ErrNoStream = errors.New("uplink: no stream configured")

// ErrNoPartitionKey is returned by Run when Config.PartitionKey is empty.
var ErrNoPartitionKey = errors.New("uplink: no partition key configured")

// RetryableError is a failure expected to clear by itself: throttling,
// internal failures, timeouts, connection resets, 5xx. The uplink retries it
// with exponential backoff and full jitter, capped at Config.MaxBackoff.
type RetryableError struct {
	Code     string // AWS error code, or a transport description ("timeout", "http 503")
	Message  string // AWS message, if any
	Throttle bool   // the service asked us to slow down
	Err      error  // the underlying error, if any
}

func (e *RetryableError) Error() string { return formatErr("retryable", e.Code, e.Message, e.Err) }
func (e *RetryableError) Unwrap() error { return e.Err }

// PermanentError is a failure that needs a human: the stream does not exist,
// access is denied, a KMS key is unusable, the request is invalid. The
// uplink still retries (records stay queued), but only every
// Config.MaxBackoff, and logs it once per change.
type PermanentError struct {
	Code    string // AWS error code
	Message string // AWS message, if any
	Err     error  // the underlying error, if any
}

func (e *PermanentError) Error() string { return formatErr("permanent", e.Code, e.Message, e.Err) }
func (e *PermanentError) Unwrap() error { return e.Err }

func formatErr(kind, code, msg string, err error) string {
	var b strings.Builder
	b.WriteString("put records: ")
	b.WriteString(kind)
	if code != "" {
		b.WriteString(" ")
		b.WriteString(code)
	}
	if msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	} else if err != nil {
		b.WriteString(": ")
		b.WriteString(err.Error())
	}
	return b.String()
}

// Error codes Kinesis returns, per record or per call.
const (
	codeThroughput   = "ProvisionedThroughputExceededException"
	codeInternal     = "InternalFailure"
	codeKMSThrottled = "KMSThrottlingException"
)

// classifyCode decides retryability for an AWS error code, whether it came
// in a PutRecordsResultEntry or as the error of the whole call.
func classifyCode(code, msg string, err error) error {
	switch code {
	case codeThroughput, codeKMSThrottled, "LimitExceededException",
		"ThrottlingException", "Throttling", "TooManyRequestsException",
		"RequestLimitExceeded", "SlowDown":
		return &RetryableError{Code: code, Message: msg, Throttle: true, Err: err}
	case codeInternal, "InternalFailureException", "InternalServerError",
		"ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout",
		"RequestTimeoutException", "ResourceInUseException",
		// Clock skew is corrected by the SDK on the next attempt.
		"RequestTimeTooSkewed", "RequestExpired", "InvalidSignatureException":
		return &RetryableError{Code: code, Message: msg, Err: err}
	}
	switch {
	case strings.HasPrefix(code, "KMS"),
		code == "ResourceNotFoundException", code == "AccessDeniedException",
		code == "AccessDenied", code == "ValidationException",
		code == "InvalidArgumentException", code == "UnrecognizedClientException",
		code == "ExpiredTokenException", code == "IncompleteSignature",
		code == "MissingAuthenticationToken", code == "InvalidClientTokenId":
		return &PermanentError{Code: code, Message: msg, Err: err}
	}
	// Unknown codes are retried with normal backoff: being wrong here costs
	// a few extra calls, being wrong the other way costs minutes of delay.
	return &RetryableError{Code: code, Message: msg, Err: err}
}

// classify turns the error of a PutRecords call into a *RetryableError or a
// *PermanentError. It never returns nil for a non-nil err.
func classify(err error) error {
	var re *RetryableError
	var pe *PermanentError
	if errors.As(err, &re) || errors.As(err, &pe) {
		return err
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		return classifyCode(api.ErrorCode(), api.ErrorMessage(), err)
	}
	var resp *smithyhttp.ResponseError
	// Status 0: no response at all; classify by the transport error below.
	if errors.As(err, &resp) && resp.HTTPStatusCode() != 0 {
		status := resp.HTTPStatusCode()
		code := fmt.Sprintf("http %d", status)
		switch {
		case status == 429:
			return &RetryableError{Code: code, Throttle: true, Err: err}
		case status >= 500:
			return &RetryableError{Code: code, Err: err}
		case status == 403 || status == 404 || status == 400:
			return &PermanentError{Code: code, Err: err}
		}
		return &RetryableError{Code: code, Err: err}
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return &RetryableError{Code: "timeout", Err: err}
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &RetryableError{Code: "connection", Err: err}
	}
	var sign *v4.SigningError
	if errors.As(err, &sign) {
		// Almost always "failed to retrieve credentials": no amount of fast
		// retrying fixes a missing or rejected credential source.
		return &PermanentError{Code: "credentials", Err: err}
	}
	// Offline, DNS failures, anything else: the stream is unreachable, which
	// on a cellular link is the common case. Keep trying.
	return &RetryableError{Code: "unreachable", Err: err}
}

// errCode is the short label of err for counters and log deduplication.
func errCode(err error) string {
	var re *RetryableError
	if errors.As(err, &re) {
		return re.Code
	}
	var pe *PermanentError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return "unknown"
}
