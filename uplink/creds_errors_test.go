package uplink

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// closedAddr returns a 127.0.0.1 address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// rejectingKinesis answers every call with an AWS error, as Kinesis does
// for keys it does not know.
func rejectingKinesis(t *testing.T, code, msg string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", code)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":%q,"message":%q}`, code, msg)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestCredentialsErrorsFromRealClient classifies the errors a real Kinesis
// client returns when its credentials are missing or refused: a
// *CredentialsError, retried every MaxBackoff, never "unreachable". A
// credential source that cannot reach its own endpoint is a network
// failure like any other.
func TestCredentialsErrorsFromRealClient(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "test")
	certFile, keyFile := ca.issue(t, "truck-7", false)
	other := newPKI(t, "other")
	badCert, badKey := other.issue(t, "intruder", false)
	iot := func(reply func(http.ResponseWriter)) *IoTConfig {
		srv := newIoTServer(t, ca)
		if reply != nil {
			srv.reply.Store(reply)
		}
		return &IoTConfig{Endpoint: strings.TrimPrefix(srv.url, "https://"), RoleAlias: "gps-agent-role",
			ThingName: "truck-7", CertFile: certFile, KeyFile: keyFile, CAFile: ca.caFile}
	}
	stub := newKinesisStub(t, nil).url
	sts := newSTSServer(t, time.Now().Add(time.Hour))
	dir := t.TempDir()
	keys := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDUNKNOWN", "AWS_SECRET_ACCESS_KEY": "wrong-secret"}
	var afterNew func() // runs after NewClient, then is reset

	tests := []struct {
		name     string
		cc       func(t *testing.T) ClientConfig
		code     string
		retrying bool // a *RetryableError (the source's endpoint is unreachable or busy), not credentials
	}{
		{name: "no source", code: "credentials", cc: func(t *testing.T) ClientConfig {
			return ClientConfig{Endpoint: stub, env: fakeEnv(nil, t.TempDir())}
		}},
		{name: "credentials file broken after start", code: "credentials", cc: func(t *testing.T) ClientConfig {
			home := t.TempDir()
			// NewClient checks the file at start; this one is written after.
			afterNew = func() {
				writeFile(t, home, ".aws/credentials", "[default]\naws_access_key_id = AKIDHALF\n")
			}
			return ClientConfig{Endpoint: stub, env: fakeEnv(nil, home)}
		}},
		{name: "web identity token refused", code: "InvalidIdentityToken", cc: func(t *testing.T) ClientConfig {
			env := map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": writeFile(t, dir, "token", "expired-jwt"),
				"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/gps-agent"}
			return ClientConfig{Endpoint: stub, env: fakeEnv(env, ""), stsEndpoint: sts.url}
		}},
		{name: "sts unreachable", code: "connection", retrying: true, cc: func(t *testing.T) ClientConfig {
			env := map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": writeFile(t, dir, "token2", "jwt-of-truck-7"),
				"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/gps-agent"}
			return ClientConfig{Endpoint: stub, env: fakeEnv(env, ""), stsEndpoint: "http://" + closedAddr(t)}
		}},
		{name: "iot provider answers 403", code: "credentials", cc: func(t *testing.T) ClientConfig {
			return ClientConfig{Endpoint: stub, env: fakeEnv(nil, ""), IoT: iot(func(w http.ResponseWriter) {
				http.Error(w, `{"message":"Access Denied"}`, http.StatusForbidden)
			})}
		}},
		{name: "iot provider refuses the certificate", code: "credentials", cc: func(t *testing.T) ClientConfig {
			cfg := iot(nil)
			cfg.CertFile, cfg.KeyFile = badCert, badKey
			return ClientConfig{Endpoint: stub, env: fakeEnv(nil, ""), IoT: cfg}
		}},
		{name: "iot provider busy", code: "iot http 503", retrying: true, cc: func(t *testing.T) ClientConfig {
			return ClientConfig{Endpoint: stub, env: fakeEnv(nil, ""), IoT: iot(func(w http.ResponseWriter) {
				http.Error(w, `{"message":"try later"}`, http.StatusServiceUnavailable)
			})}
		}},
		{name: "iot provider unreachable", code: "connection", retrying: true, cc: func(t *testing.T) ClientConfig {
			cfg := iot(nil)
			cfg.Endpoint = closedAddr(t)
			return ClientConfig{Endpoint: stub, env: fakeEnv(nil, ""), IoT: cfg}
		}},
		{name: "kinesis does not know the keys", code: "UnrecognizedClientException", cc: func(t *testing.T) ClientConfig {
			ep := rejectingKinesis(t, "UnrecognizedClientException", "The security token included in the request is invalid.")
			return ClientConfig{Endpoint: ep, env: fakeEnv(keys, "")}
		}},
		{name: "kinesis: token expired", code: "ExpiredTokenException", cc: func(t *testing.T) ClientConfig {
			ep := rejectingKinesis(t, "ExpiredTokenException", "The security token included in the request is expired")
			return ClientConfig{Endpoint: ep, env: fakeEnv(keys, "")}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := tt.cc(t)
			cc.Region = "eu-west-1"
			c, err := NewClient(t.Context(), cc)
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			if afterNew != nil {
				afterNew()
				afterNew = nil
			}
			err = putOne(t, c)
			if err == nil {
				t.Fatal("PutRecords succeeded")
			}
			kind := "credentials"
			if tt.retrying {
				kind = "retryable"
			}
			if got := wantClass(t, err, kind, tt.code); needsPerson(got) == tt.retrying {
				t.Errorf("needs a person = %v for %v", !tt.retrying, got)
			}
		})
	}
}

// TestMissingCredentialsRetriedAtMaxBackoff runs the uplink with a real
// client and no credentials: one clear log line, calls every MaxBackoff,
// counted as "credentials", records kept.
func TestMissingCredentialsRetriedAtMaxBackoff(t *testing.T) {
	t.Parallel()
	c, err := NewClient(t.Context(), ClientConfig{Region: "eu-west-1", Endpoint: newKinesisStub(t, nil).url,
		env: fakeEnv(nil, t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	q := newMemQueue()
	var logs logBuffer
	cfg := testConfig()
	cfg.MaxBackoff = 300 * time.Millisecond
	cfg.Log = slog.New(slog.NewTextHandler(&logs, nil))
	u := New(cfg, c, q)
	startRun(t, u)
	q.add("a", "b")

	const window = 2 * time.Second
	time.Sleep(window)
	s := u.Stats()
	// A call at once, then one per MaxBackoff; a slow CPU only makes fewer.
	if max := uint64(window/cfg.MaxBackoff) + 2; s.Calls > max || s.CallErrors["credentials"] != s.Calls || s.Calls < 2 {
		t.Errorf("%d calls in %v, want 2..%d, all counted as credentials: %v", s.Calls, window, max, s.CallErrors)
	}
	if q.pendingCount() != 2 {
		t.Errorf("pending = %d, want 2: records must stay queued", q.pendingCount())
	}
	out := logs.String()
	if n := strings.Count(out, "level="); n != 1 || !strings.Contains(out, "no aws credentials kinesis accepts") ||
		!strings.Contains(out, "tried the environment") {
		t.Errorf("want one log line naming the credentials and the sources tried; got %d:\n%s", n, out)
	}
}
