package uplink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	smithy "github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Sentinel errors. Failures of a call are not sentinels but types
// (RetryableError, PermanentError, CredentialsError): Run retries them all.
var (
	// ErrNoStream is returned by Validate and Run when Config.Stream is
	// empty.
	ErrNoStream = errors.New("uplink: no stream configured")
	// ErrNoPartitionKey is returned by Validate and Run when
	// Config.PartitionKey is empty.
	ErrNoPartitionKey = errors.New("uplink: no partition key configured")
	// ErrRunning is returned by Run while another Run of the same Uplink
	// runs: two loops would send every record twice.
	ErrRunning = errors.New("already running")
	// errNoCredentials is returned by the shared-files credential source,
	// wrapped in a message naming every source tried, when no source has
	// credentials; NewClient tells it from a malformed file with it.
	errNoCredentials = errors.New("no aws credentials")
)

// RetryableError is a failure expected to clear by itself: throttling,
// internal failures, timeouts, connection resets, 5xx. The uplink retries it
// with exponential backoff and full jitter, capped at Config.MaxBackoff.
type RetryableError struct {
	Code     string // AWS error code, or a transport description ("timeout", "http 503")
	Message  string // AWS message, if any
	Throttle bool   // the service asked us to slow down
	// Offline says nothing answered: no route, refused, reset, a DNS
	// failure, a connect, TLS or reply timeout, a connection gone dead. The
	// link is down, so the uplink probes it with the newest record, at most
	// once a second (see retryWait), instead of backing off for long.
	Offline bool
	Err     error // the underlying error, if any
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

// CredentialsError is a failure to authenticate: no credential source is
// set, a source fails (a credentials file that is malformed, STS refusing
// the web identity token, the AWS IoT credentials provider refusing the
// thing certificate), or Kinesis rejects the keys (UnrecognizedClientException,
// ExpiredTokenException, ...). A better link does not fix it; a person or a
// provisioning step does. The uplink retries it every Config.MaxBackoff (a
// credentials file provisioned later is picked up without a restart), logs
// it once per change and at most every credentialsLogEvery, and never takes
// it for an unreachable stream. A source that fails because its own
// endpoint is unreachable (IoT, STS) is a *RetryableError instead.
type CredentialsError struct {
	Code    string // "credentials" when no source gave any, else the AWS code of the rejection
	Message string // AWS message, if any
	Err     error  // the underlying error
}

func (e *CredentialsError) Error() string {
	return formatErr("credentials", e.Code, e.Message, e.Err)
}
func (e *CredentialsError) Unwrap() error { return e.Err }

// identityError marks a failure of the client's credential source. The SDK
// reports it as a plain wrapped error from its identity middleware, so the
// chain's providers wrap their own errors in this type (creds.go), and
// classify finds it with errors.As whatever the SDK wraps around it.
type identityError struct{ err error }

func (e *identityError) Error() string { return e.err.Error() }
func (e *identityError) Unwrap() error { return e.err }

// sourceUnavailable is a credential source that answered "try later" (the
// IoT credentials provider's 5xx or 429): transient, not a refusal.
type sourceUnavailable struct {
	code string // e.g. "iot http 503", the RetryableError's code
	err  error
}

func (e *sourceUnavailable) Error() string { return e.err.Error() }
func (e *sourceUnavailable) Unwrap() error { return e.err }

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
	case code == "UnrecognizedClientException", code == "ExpiredTokenException",
		code == "IncompleteSignature", code == "MissingAuthenticationToken",
		code == "InvalidClientTokenId", code == "InvalidIdentityToken",
		code == "ExpiredToken", code == "IDPRejectedClaim":
		// Keys or a token Kinesis (or STS) does not accept. AccessDenied is
		// a known identity lacking a permission: permanent, not this.
		return &CredentialsError{Code: code, Message: msg, Err: err}
	case strings.HasPrefix(code, "KMS"),
		code == "ResourceNotFoundException", code == "AccessDeniedException",
		code == "AccessDenied", code == "ValidationException",
		code == "InvalidArgumentException":
		return &PermanentError{Code: code, Message: msg, Err: err}
	}
	// Unknown codes are retried with normal backoff: being wrong here costs
	// a few extra calls, being wrong the other way costs minutes of delay.
	return &RetryableError{Code: code, Message: msg, Err: err}
}

// classify turns the error of a PutRecords call into a *RetryableError,
// *PermanentError or *CredentialsError. It never returns nil for a non-nil
// err.
func classify(err error) error {
	var (
		re *RetryableError
		pe *PermanentError
		ce *CredentialsError
	)
	if errors.As(err, &re) || errors.As(err, &pe) || errors.As(err, &ce) {
		return err
	}
	var id *identityError
	if errors.As(err, &id) {
		return classifyIdentity(err, id.err)
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
	if code, ok := transportFailure(err); ok {
		return &RetryableError{Code: code, Offline: true, Err: err}
	}
	// Offline, DNS failures, anything else (an HTTP/2 connection closed
	// for a lost ping): the stream is unreachable, which on a cellular link
	// is the common case. Keep trying.
	return &RetryableError{Code: "unreachable", Offline: true, Err: err}
}

// classifyIdentity classifies err, whose credential source failed with
// cause: a source that could not reach its own endpoint (IoT, STS) or that
// answered "try later" is retried like any unreachable call; anything else
// is a *CredentialsError.
func classifyIdentity(err, cause error) error {
	var busy *sourceUnavailable
	if errors.As(cause, &busy) {
		return &RetryableError{Code: busy.code, Err: err}
	}
	var re *RetryableError
	var api smithy.APIError
	if errors.As(cause, &api) {
		// STS throttling or failing inside is transient; its refusals are not.
		if c := classifyCode(api.ErrorCode(), api.ErrorMessage(), err); errors.As(c, &re) {
			return c
		}
		return &CredentialsError{Code: api.ErrorCode(), Message: api.ErrorMessage(), Err: err}
	}
	if code, ok := transportFailure(cause); ok {
		return &RetryableError{Code: code, Offline: true, Err: err}
	}
	var dns *net.DNSError
	var op *net.OpError
	// A TLS alert from the source ("remote error": a certificate it refuses)
	// is a refusal, not a network failure.
	if errors.As(cause, &dns) || errors.As(cause, &op) && op.Op != "remote error" {
		return &RetryableError{Code: "unreachable", Offline: true, Err: err}
	}
	return &CredentialsError{Code: "credentials", Err: err}
}

// transportFailure reports whether err is a timeout or a broken connection,
// and its code.
func transportFailure(err error) (string, bool) {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout", true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection", true
	}
	return "", false
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
	var ce *CredentialsError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return "unknown"
}

// offline reports whether err says the link is down (RetryableError.Offline).
func offline(err error) bool {
	var re *RetryableError
	return errors.As(err, &re) && re.Offline
}

// throttled reports whether err asks the uplink to slow down.
func throttled(err error) bool {
	var re *RetryableError
	return errors.As(err, &re) && re.Throttle
}

// needsPerson reports whether err waits Config.MaxBackoff before the next
// try: no amount of fast retrying fixes it.
func needsPerson(err error) bool {
	var pe *PermanentError
	var ce *CredentialsError
	return errors.As(err, &pe) || errors.As(err, &ce)
}
