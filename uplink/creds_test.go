package uplink

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// fakeEnv is an environment for the credential chain with no variables but
// vars, and a home directory (empty: none).
func fakeEnv(vars map[string]string, home string) credsEnv {
	return credsEnv{
		getenv: func(k string) string { return vars[k] },
		home: func() (string, error) {
			if home == "" {
				return "", errors.New("$HOME is not defined")
			}
			return home, nil
		},
	}
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// credsOf builds a client the way the agent does and retrieves its
// credentials.
func credsOf(t *testing.T, cc ClientConfig) (aws.Credentials, error) {
	t.Helper()
	c, err := NewClient(t.Context(), cc)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c.Options().Credentials.Retrieve(t.Context())
}

const (
	credsFile = `# written by provisioning
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = default-secret

[truck]
aws_access_key_id=AKIDTRUCK
aws_secret_access_key=truck-secret
aws_session_token=truck-token
`
	configFile = `[default]
region = eu-west-1
aws_access_key_id = AKIDCONFDEFAULT
aws_secret_access_key = confdefault-secret

[profile cfgonly]
s3 =
  max_concurrent_requests = 20
AWS_ACCESS_KEY_ID = AKIDCFGONLY
aws_secret_access_key = cfgonly-secret

[sso-session cfgonly]
aws_access_key_id = AKIDNOTAPROFILE
`
)

func TestCredentialSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	creds := writeFile(t, dir, "credentials", credsFile)
	config := writeFile(t, dir, "config", configFile)
	home := t.TempDir()
	homeCreds := writeFile(t, home, ".aws/credentials", "\uFEFF[default]\n\taws_access_key_id = AKIDHOME\n\taws_secret_access_key = home-secret ; not a comment\n")
	files := map[string]string{"AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_CONFIG_FILE": config}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name                   string
		env                    map[string]string
		home                   string
		wantID, wantToken, src string
	}{
		{name: "environment", env: with(files, "AWS_ACCESS_KEY_ID", "AKIDENV", "AWS_SECRET_ACCESS_KEY", "env-secret", "AWS_SESSION_TOKEN", "env-token"),
			wantID: "AKIDENV", wantToken: "env-token", src: "EnvConfigCredentials"},
		{name: "legacy environment", env: with(files, "AWS_ACCESS_KEY", "AKIDLEGACY", "AWS_SECRET_KEY", "legacy-secret"),
			wantID: "AKIDLEGACY", src: "EnvConfigCredentials"},
		{name: "current environment names win over legacy", env: with(nil, "AWS_ACCESS_KEY_ID", "AKIDENV", "AWS_SECRET_ACCESS_KEY", "env-secret",
			"AWS_ACCESS_KEY", "AKIDLEGACY", "AWS_SECRET_KEY", "legacy-secret"), wantID: "AKIDENV", src: "EnvConfigCredentials"},
		{name: "environment wins over shared files", env: with(files, "AWS_ACCESS_KEY_ID", "AKIDENV", "AWS_SECRET_ACCESS_KEY", "env-secret", "AWS_PROFILE", "truck"),
			home: home, wantID: "AKIDENV", src: "EnvConfigCredentials"},
		{name: "credentials file, default profile", env: files, wantID: "AKIDDEFAULT", src: "SharedConfigCredentials: " + creds},
		{name: "credentials file, AWS_PROFILE", env: with(files, "AWS_PROFILE", "truck", "AWS_DEFAULT_PROFILE", "default"),
			wantID: "AKIDTRUCK", wantToken: "truck-token", src: "SharedConfigCredentials: " + creds},
		{name: "credentials file, AWS_DEFAULT_PROFILE", env: with(files, "AWS_DEFAULT_PROFILE", "truck"),
			wantID: "AKIDTRUCK", wantToken: "truck-token", src: "SharedConfigCredentials: " + creds},
		{name: "config file profile section", env: with(files, "AWS_PROFILE", "cfgonly"),
			wantID: "AKIDCFGONLY", src: "SharedConfigCredentials: " + config},
		{name: "config file default", env: with(nil, "AWS_CONFIG_FILE", config), wantID: "AKIDCONFDEFAULT", src: "SharedConfigCredentials: " + config},
		{name: "files under the home directory", env: nil, home: home, wantID: "AKIDHOME", src: "SharedConfigCredentials: " + homeCreds},
		{name: "variables win over the home directory", env: files, home: home, wantID: "AKIDDEFAULT", src: "SharedConfigCredentials: " + creds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := credsOf(t, ClientConfig{Region: "eu-west-1", env: fakeEnv(tt.env, tt.home)})
			if err != nil {
				t.Fatalf("Retrieve: %v", err)
			}
			if got.AccessKeyID != tt.wantID || got.SessionToken != tt.wantToken || got.Source != tt.src {
				t.Errorf("credentials = %s/%q from %q, want %s/%q from %q", got.AccessKeyID, got.SessionToken, got.Source, tt.wantID, tt.wantToken, tt.src)
			}
			if got.SecretAccessKey == "" || got.CanExpire {
				t.Errorf("credentials: secret empty %v, can expire %v; want a static secret", got.SecretAccessKey == "", got.CanExpire)
			}
		})
	}
}

func TestCredentialErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	file := func(name, content string) string { return writeFile(t, dir, name, content) }
	tests := []struct {
		name string
		env  map[string]string
		// atNew: NewClient fails; otherwise the first Retrieve does.
		atNew bool
		want  []string
	}{
		{name: "key id without secret", env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIDONLY"}, atNew: true,
			want: []string{"AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"}},
		{name: "legacy secret without key id", env: map[string]string{"AWS_SECRET_KEY": "s3cr3t"}, atNew: true,
			want: []string{"AWS_SECRET_KEY is set but AWS_ACCESS_KEY_ID is not"}},
		{name: "token file without role", env: map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": missing}, atNew: true,
			want: []string{"AWS_ROLE_ARN is not"}},
		{name: "line without equals", env: map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file("noeq", "[default]\n\naws_access_key_id AKID\n")},
			atNew: true, want: []string{dir + "/noeq:3: want key = value"}},
		{name: "key outside a section", env: map[string]string{"AWS_CONFIG_FILE": file("nosec", "# c\nregion = x\n")},
			atNew: true, want: []string{dir + "/nosec:2: key outside any [section]"}},
		{name: "unterminated header", env: map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file("hdr", "[default\n")},
			atNew: true, want: []string{dir + "/hdr:1: section header without ]"}},
		{name: "key id without secret in a file", env: map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file("half", "[other]\naws_secret_access_key = s3cr3t\n[default]\nregion = x\naws_access_key_id = AKIDHALF\n")},
			atNew: true, want: []string{dir + "/half:5: profile \"default\" has aws_access_key_id but no aws_secret_access_key"}},
		{name: "sso profile", env: map[string]string{"AWS_PROFILE": "dev", "AWS_CONFIG_FILE": file("sso", "[profile dev]\nsso_session = corp\nregion = x\n")},
			atNew: true, want: []string{dir + "/sso:2: profile \"dev\" uses sso_session, which gps-agent does not support"}},
		{name: "credential process", env: map[string]string{"AWS_SHARED_CREDENTIALS_FILE": file("proc", "[default]\ncredential_process = /bin/creds\n")},
			atNew: true, want: []string{dir + "/proc:2: profile \"default\" uses credential_process"}},
		{name: "no credentials anywhere", env: map[string]string{"AWS_SHARED_CREDENTIALS_FILE": missing, "AWS_PROFILE": "truck",
			"AWS_CONFIG_FILE": file("cfg", "[profile truck]\nregion = eu-west-1\n[default]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = s3cr3t\n")},
			want: []string{"no aws credentials", "the environment (AWS_ACCESS_KEY_ID)", "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)",
				`profile "truck"`, missing + " (no such file)", dir + `/cfg:1 (profile "truck" has no keys)`}},
		{name: "no credentials and no home", env: nil,
			want: []string{"no aws credentials", "no home directory for ~/.aws/credentials (set AWS_SHARED_CREDENTIALS_FILE)"}},
		{name: "profile missing", env: map[string]string{"AWS_PROFILE": "nope", "AWS_SHARED_CREDENTIALS_FILE": file("c2", credsFile), "AWS_CONFIG_FILE": missing},
			want: []string{dir + `/c2 (no profile "nope")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cc := ClientConfig{Region: "eu-west-1", env: fakeEnv(tt.env, "")}
			c, err := NewClient(t.Context(), cc)
			if err == nil && !tt.atNew {
				_, err = c.Options().Credentials.Retrieve(t.Context())
			} else if (err != nil) != tt.atNew {
				t.Fatalf("NewClient = %v, want error %v", err, tt.atNew)
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %v\nwant it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error reveals a secret: %v", err)
			}
		})
	}
}

// A credentials file provisioned after start-up is used without a restart.
func TestCredentialsFileAppearsLater(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	c, err := NewClient(t.Context(), ClientConfig{Region: "eu-west-1",
		env: fakeEnv(map[string]string{"AWS_SHARED_CREDENTIALS_FILE": path, "AWS_CONFIG_FILE": path + ".none"}, "")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Options().Credentials.Retrieve(t.Context()); err == nil || !strings.Contains(err.Error(), path+" (no such file)") {
		t.Fatalf("Retrieve before the file exists = %v, want no such file", err)
	}
	writeFile(t, dir, "credentials", credsFile)
	got, err := c.Options().Credentials.Retrieve(t.Context())
	if err != nil || got.AccessKeyID != "AKIDDEFAULT" {
		t.Fatalf("Retrieve after = %s, %v; want AKIDDEFAULT", got.AccessKeyID, err)
	}
}

func TestRegion(t *testing.T) {
	t.Parallel()
	keys := map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret"}
	tests := []struct {
		name, region, envRegion, envDefault, want string
	}{
		{name: "configured wins", region: "eu-west-1", envRegion: "us-east-1", envDefault: "us-east-2", want: "eu-west-1"},
		{name: "AWS_REGION", envRegion: "us-east-1", envDefault: "us-east-2", want: "us-east-1"},
		{name: "AWS_DEFAULT_REGION", envDefault: "us-east-2", want: "us-east-2"},
		{name: "none", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"AWS_REGION": tt.envRegion, "AWS_DEFAULT_REGION": tt.envDefault}
			for k, v := range keys {
				env[k] = v
			}
			c, err := NewClient(t.Context(), ClientConfig{Region: tt.region, env: fakeEnv(env, "")})
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), "no region") {
					t.Errorf("NewClient = %v, want a no region error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Options().Region; got != tt.want {
				t.Errorf("region = %q, want %q", got, tt.want)
			}
		})
	}
}

// stsServer answers AssumeRoleWithWebIdentity like STS.
type stsServer struct {
	url string
	mu  sync.Mutex
	got []string // the forms received
}

func newSTSServer(t *testing.T, exp time.Time) *stsServer {
	t.Helper()
	s := &stsServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.got = append(s.got, r.PostForm.Encode())
		s.mu.Unlock()
		if r.PostForm.Get("Action") != "AssumeRoleWithWebIdentity" || r.PostForm.Get("WebIdentityToken") != "jwt-of-truck-7" {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>bad token</Message></Error><RequestId>r1</RequestId></ErrorResponse>`)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAWEBID</AccessKeyId>
      <SecretAccessKey>webid-secret</SecretAccessKey>
      <SessionToken>webid-token</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/gps-agent/truck-7</Arn><AssumedRoleId>AROA:truck-7</AssumedRoleId></AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r2</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`, exp.UTC().Format(time.RFC3339))
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// kinesisStub answers every PutRecords call with success and keeps the
// last request's headers.
type kinesisStub struct {
	url string
	mu  sync.Mutex
	hdr http.Header
}

func newKinesisStub(t *testing.T, tlsCfg *tls.Config) *kinesisStub {
	t.Helper()
	k := &kinesisStub{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.hdr = r.Header.Clone()
		k.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, `{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000000"}]}`)
	}))
	if tlsCfg != nil {
		srv.TLS = tlsCfg
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	k.url = srv.URL
	return k
}

func (k *kinesisStub) header(name string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.hdr.Get(name)
}

func putOne(t *testing.T, c *kinesis.Client) error {
	t.Helper()
	_, err := c.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String("fixes"),
		Records: []types.PutRecordsRequestEntry{{Data: []byte("x"), PartitionKey: aws.String("truck-7")}}})
	return err
}

func TestWebIdentity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "jwt-of-truck-7")
	sts := newSTSServer(t, time.Now().Add(time.Hour))
	k := newKinesisStub(t, nil)
	env := map[string]string{
		"AWS_WEB_IDENTITY_TOKEN_FILE": token, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/gps-agent",
		"AWS_ROLE_SESSION_NAME": "truck-7",
		// Web identity comes before the shared files.
		"AWS_SHARED_CREDENTIALS_FILE": writeFile(t, dir, "credentials", credsFile),
	}
	c, err := NewClient(t.Context(), ClientConfig{Region: "eu-west-1", Endpoint: k.url, env: fakeEnv(env, ""), stsEndpoint: sts.url})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Options().Credentials.Retrieve(t.Context())
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	if got.AccessKeyID != "ASIAWEBID" || got.SessionToken != "webid-token" || got.Source != "WebIdentityCredentials" || !got.CanExpire {
		t.Errorf("credentials = %s/%q from %q (can expire %v), want ASIAWEBID/webid-token from WebIdentityCredentials, expiring",
			got.AccessKeyID, got.SessionToken, got.Source, got.CanExpire)
	}
	if err := putOne(t, c); err != nil {
		t.Fatalf("PutRecords: %v", err)
	}
	if auth := k.header("Authorization"); !strings.Contains(auth, "Credential=ASIAWEBID/") || k.header("X-Amz-Security-Token") != "webid-token" {
		t.Errorf("call not signed with the web identity credentials: Authorization %q", auth)
	}
	sts.mu.Lock()
	defer sts.mu.Unlock()
	if len(sts.got) != 1 {
		t.Fatalf("sts calls = %d, want 1 (cached)", len(sts.got))
	}
	for _, w := range []string{"RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fgps-agent", "RoleSessionName=truck-7"} {
		if !strings.Contains(sts.got[0], w) {
			t.Errorf("sts form %q lacks %q", sts.got[0], w)
		}
	}
}

func TestWebIdentityRejected(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sts := newSTSServer(t, time.Now().Add(time.Hour))
	env := map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": writeFile(t, dir, "token", "expired-jwt"),
		"AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/gps-agent"}
	_, err := credsOf(t, ClientConfig{Region: "eu-west-1", env: fakeEnv(env, ""), stsEndpoint: sts.url})
	if err == nil || !strings.Contains(err.Error(), "InvalidIdentityToken") {
		t.Errorf("Retrieve = %v, want InvalidIdentityToken", err)
	}
}

func TestCABundle(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "bundle")
	certFile, keyFile := ca.issue(t, "kinesis", true)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	k := newKinesisStub(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	notPEM := writeFile(t, t.TempDir(), "notpem", "hello\n")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name, bundle string
		newErr       string // NewClient fails with this
		callErr      string // the call fails with this
	}{
		{name: "bundle with the server's CA", bundle: ca.caFile},
		{name: "no bundle: system roots", bundle: "", callErr: "certificate signed by unknown authority"},
		{name: "bundle without the CA", bundle: "/etc/ssl/certs/ca-certificates.crt", callErr: "certificate signed by unknown authority"},
		{name: "missing bundle", bundle: missing, newErr: "AWS_CA_BUNDLE: open " + missing},
		{name: "bundle not PEM", bundle: notPEM, newErr: "AWS_CA_BUNDLE: " + notPEM + ": no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.bundle == "/etc/ssl/certs/ca-certificates.crt" {
				if _, err := os.Stat(tt.bundle); err != nil {
					t.Skip("no system bundle here")
				}
			}
			env := map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_CA_BUNDLE": tt.bundle}
			c, err := NewClient(t.Context(), ClientConfig{Region: "eu-west-1", Endpoint: k.url, env: fakeEnv(env, "")})
			if tt.newErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.newErr) {
					t.Errorf("NewClient = %v, want %q", err, tt.newErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			err = putOne(t, c)
			if tt.callErr == "" && err != nil {
				t.Errorf("PutRecords = %v, want success", err)
			}
			if tt.callErr != "" && (err == nil || !strings.Contains(err.Error(), tt.callErr)) {
				t.Errorf("PutRecords = %v, want %q", err, tt.callErr)
			}
		})
	}
}

func TestParseProfile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text, profile string
		config              bool
		want                map[string]iniValue // nil: no such profile
	}{
		{name: "credentials file", text: "[a]\nk=1\n[b]\nk = 2\n", profile: "b", want: map[string]iniValue{"k": {"2", 4}}},
		{name: "sections merge, last wins", text: "[a]\nk=1\nj=3\n[b]\n[a]\nk=2\n", profile: "a",
			want: map[string]iniValue{"k": {"2", 6}, "j": {"3", 3}}},
		{name: "config profile prefix", text: "[profile  a ]\nk=1\n", profile: "a", config: true, want: map[string]iniValue{"k": {"1", 2}}},
		{name: "config needs the prefix", text: "[a]\nk=1\n", profile: "a", config: true},
		{name: "config other kinds", text: "[profiles a]\nk=1\n[sso-session a]\nk=1\n", profile: "a", config: true},
		{name: "credentials file takes the header as is", text: "[profile a]\nk=1\n", profile: "a"},
		{name: "comments and blank lines", text: "# c\n; c\n\n[a] # c\n  # c\nk = v=w\n", profile: "a", want: map[string]iniValue{"k": {"v=w", 6}}},
		{name: "sub-properties skipped", text: "[a]\ns3 =\n  k = 9\nk = 1\n", profile: "a",
			want: map[string]iniValue{"s3": {"", 2}, "k": {"1", 4}}},
		{name: "keys are case-insensitive", text: "[a]\nAWS_Access_Key_ID = X\n", profile: "a", want: map[string]iniValue{"aws_access_key_id": {"X", 2}}},
		{name: "CRLF", text: "[a]\r\nk = 1\r\n", profile: "a", want: map[string]iniValue{"k": {"1", 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseProfile("f", []byte(tt.text), tt.profile, tt.config)
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tt.want == nil) {
				t.Fatalf("found = %v, want %v", got != nil, tt.want != nil)
			}
			if got == nil {
				return
			}
			if fmt.Sprint(got.keys) != fmt.Sprint(tt.want) {
				t.Errorf("keys = %v, want %v", got.keys, tt.want)
			}
		})
	}
}

// FuzzParseProfile: any file parses or fails with file:line, and values come
// from lines that exist.
func FuzzParseProfile(f *testing.F) {
	f.Add([]byte(credsFile), "truck", false)
	f.Add([]byte(configFile), "cfgonly", true)
	f.Add([]byte("[a\nk"), "a", true)
	f.Fuzz(func(t *testing.T, b []byte, profile string, config bool) {
		got, err := parseProfile("f", b, profile, config)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "shared credentials: f:") && !strings.Contains(err.Error(), "read f") {
				t.Fatalf("error without file:line: %v", err)
			}
			return
		}
		if got == nil {
			return
		}
		lines := strings.Count(string(b), "\n") + 1
		if got.line < 1 || got.line > lines {
			t.Errorf("section line %d outside 1..%d", got.line, lines)
		}
		for k, v := range got.keys {
			if v.line <= got.line || v.line > lines || k == "" {
				t.Errorf("key %q at line %d, section at %d, %d lines", k, v.line, got.line, lines)
			}
		}
	})
}
