package uplink

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// The credential chain is a lean stand-in for the SDK's default chain
// (aws-sdk-go-v2/config), keeping the parts a truck gateway can use:
//
//  1. AWS IoT Core with the thing certificate (ClientConfig.IoT; iot.go);
//  2. the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the
//     legacy AWS_ACCESS_KEY and AWS_SECRET_KEY), AWS_SESSION_TOKEN;
//  3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN
//     (AWS_ROLE_SESSION_NAME), exchanged with STS;
//  4. static keys of profile AWS_PROFILE (or AWS_DEFAULT_PROFILE, or
//     "default") in the shared credentials file (AWS_SHARED_CREDENTIALS_FILE
//     or ~/.aws/credentials), then in the shared config file
//     (AWS_CONFIG_FILE or ~/.aws/config).
//
// Not supported: SSO (a gateway has no browser and no one to log in),
// credential_process, assume-role profiles (role_arn, source_profile), the
// container and EC2 metadata endpoints (a gateway has none; probing them
// stalls start-up). The SDK's config package, which brings those, costs
// about 1.6 MB of an ARM binary we keep under 10 MiB.

// Credential sources, as aws.Credentials.Source names them. The first two
// are the SDK's names: `gps-agent check` prints sources by these names.
const (
	envSource    = "EnvConfigCredentials"
	sharedSource = "SharedConfigCredentials"
)

// credentialsExpiryWindow refreshes temporary credentials this long before
// they expire, so a call on a slow link never carries an expired token.
const credentialsExpiryWindow = 5 * time.Minute

// credsEnv is what the chain reads from the process: the environment and
// the home directory. The zero value reads the real ones; tests give their
// own so that they can run in parallel.
type credsEnv struct {
	getenv func(string) string
	home   func() (string, error)
}

func (e credsEnv) get(key string) string {
	if e.getenv == nil {
		return os.Getenv(key)
	}
	return e.getenv(key)
}

// first returns the first non-empty variable of keys and its name.
func (e credsEnv) first(keys ...string) (name, value string) {
	for _, k := range keys {
		if v := e.get(k); v != "" {
			return k, v
		}
	}
	return "", ""
}

func (e credsEnv) homeDir() (string, error) {
	if e.home == nil {
		return os.UserHomeDir()
	}
	return e.home()
}

// region is the region from the configuration, else from the environment.
func (e credsEnv) region(configured string) string {
	if configured != "" {
		return configured
	}
	_, r := e.first("AWS_REGION", "AWS_DEFAULT_REGION")
	return r
}

// stsSettings say how the web identity source reaches STS.
type stsSettings struct {
	region     string
	httpClient aws.HTTPClient
	// endpoint overrides the STS endpoint (tests).
	endpoint string
}

// newCredentials picks the credential source of a client (see the chain
// above). Sources are chosen here from the environment, which does not
// change; the shared files are read when credentials are first needed, so a
// file provisioned after start-up is used without a restart. A malformed
// environment or shared file is an error now; no credentials at all is an
// error at first use, naming the sources tried.
func newCredentials(ctx context.Context, env credsEnv, iot *IoTConfig, st stsSettings) (aws.CredentialsProvider, error) {
	if iot != nil {
		p, err := newIoTProvider(*iot)
		if err != nil {
			return nil, err
		}
		return newIoTCredentialsCache(p), nil
	}
	if c, ok, err := envCredentials(env); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return aws.NewCredentialsCache(staticProvider(c)), nil
	}
	if p, ok, err := webIdentity(env, st); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return aws.NewCredentialsCache(identitySource{p}, func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = credentialsExpiryWindow
			o.ExpiryWindowJitterFrac = 0.2
		}), nil
	}
	p := newSharedProvider(env)
	// Fail fast on a malformed file; a missing one may be provisioned later.
	if _, err := p.Retrieve(ctx); err != nil && !errors.Is(err, errNoCredentials) {
		return nil, err
	}
	return aws.NewCredentialsCache(identitySource{p}), nil
}

// identitySource marks the errors of a credential source as identity
// failures (*identityError), under the SDK's cache, so that classify can
// tell "no credentials" from "no network" whatever the SDK wraps around
// them.
type identitySource struct{ aws.CredentialsProvider }

func (s identitySource) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := s.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &identityError{err: err}
	}
	return c, nil
}

// staticProvider returns fixed credentials.
type staticProvider aws.Credentials

func (s staticProvider) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials(s), nil
}

// envCredentials reads keys from the environment. One key without the other
// is an error rather than a silent fall-through to the shared files.
func envCredentials(env credsEnv) (aws.Credentials, bool, error) {
	idName, id := env.first("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY")
	secretName, secret := env.first("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY")
	switch {
	case id == "" && secret == "":
		return aws.Credentials{}, false, nil
	case secret == "":
		return aws.Credentials{}, false, fmt.Errorf("environment credentials: %s is set but AWS_SECRET_ACCESS_KEY is not", idName)
	case id == "":
		return aws.Credentials{}, false, fmt.Errorf("environment credentials: %s is set but AWS_ACCESS_KEY_ID is not", secretName)
	}
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: env.get("AWS_SESSION_TOKEN"),
		Source: envSource}, true, nil
}

// webIdentity exchanges the token in AWS_WEB_IDENTITY_TOKEN_FILE for
// credentials of AWS_ROLE_ARN. The token file is read on every refresh
// (tokens are rotated by whoever writes them).
func webIdentity(env credsEnv, st stsSettings) (aws.CredentialsProvider, bool, error) {
	tokenFile, role := env.get("AWS_WEB_IDENTITY_TOKEN_FILE"), env.get("AWS_ROLE_ARN")
	switch {
	case tokenFile == "" && role == "":
		return nil, false, nil
	case tokenFile == "":
		// AWS_ROLE_ARN alone is no source (the SDK ignores it too).
		return nil, false, nil
	case role == "":
		return nil, false, fmt.Errorf("web identity credentials: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not")
	case st.region == "":
		return nil, false, fmt.Errorf("web identity credentials: no region for sts")
	}
	client := sts.New(sts.Options{
		Region:     st.region,
		HTTPClient: st.httpClient,
		// The Uplink retries a failed call, and with it the refresh.
		Retryer: retry.AddWithMaxAttempts(retry.NewStandard(), 1),
	}, func(o *sts.Options) {
		if st.endpoint != "" {
			o.BaseEndpoint = aws.String(st.endpoint)
		}
	})
	session := env.get("AWS_ROLE_SESSION_NAME")
	return stscreds.NewWebIdentityRoleProvider(client, role, stscreds.IdentityTokenFile(tokenFile),
		func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = session }), true, nil
}

// sharedProvider reads static keys of one profile from the shared
// credentials file, then the shared config file, on every Retrieve.
type sharedProvider struct {
	profile string
	// files in the order they are searched.
	files []sharedFile
	// noHome says which default paths are unknown (no home directory).
	noHome []string
}

type sharedFile struct {
	path   string
	config bool // the config file: sections are "profile NAME" or "default"
}

func newSharedProvider(env credsEnv) *sharedProvider {
	_, profile := env.first("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
	if profile == "" {
		profile = "default"
	}
	p := &sharedProvider{profile: profile}
	for _, f := range []struct {
		env, name string
		config    bool
	}{{"AWS_SHARED_CREDENTIALS_FILE", "credentials", false}, {"AWS_CONFIG_FILE", "config", true}} {
		path := env.get(f.env)
		if path == "" {
			home, err := env.homeDir()
			if err != nil || home == "" {
				p.noHome = append(p.noHome, fmt.Sprintf("no home directory for ~/.aws/%s (set %s)", f.name, f.env))
				continue
			}
			path = filepath.Join(home, ".aws", f.name)
		}
		p.files = append(p.files, sharedFile{path: path, config: f.config})
	}
	return p
}

// unsupportedKeys are profile keys of credential sources gps-agent does not
// implement; a profile with one of them and no static keys is an error that
// says so, rather than "no credentials".
var unsupportedKeys = [...]string{"sso_session", "sso_start_url", "credential_process", "role_arn",
	"source_profile", "credential_source", "web_identity_token_file", "login_session"}

func (p *sharedProvider) Retrieve(context.Context) (aws.Credentials, error) {
	var tried []string
	for _, f := range p.files {
		sec, err := readProfile(f.path, p.profile, f.config)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			tried = append(tried, f.path+" (no such file)")
			continue
		case err != nil:
			return aws.Credentials{}, err
		case sec == nil:
			tried = append(tried, fmt.Sprintf("%s (no profile %q)", f.path, p.profile))
			continue
		}
		id, secret := sec.keys["aws_access_key_id"], sec.keys["aws_secret_access_key"]
		switch {
		case id.value != "" && secret.value != "":
			return aws.Credentials{AccessKeyID: id.value, SecretAccessKey: secret.value,
				SessionToken: sec.keys["aws_session_token"].value, Source: sharedSource + ": " + f.path}, nil
		case id.value != "":
			return aws.Credentials{}, fmt.Errorf("shared credentials: %s:%d: profile %q has aws_access_key_id but no aws_secret_access_key",
				f.path, id.line, p.profile)
		case secret.value != "":
			return aws.Credentials{}, fmt.Errorf("shared credentials: %s:%d: profile %q has aws_secret_access_key but no aws_access_key_id",
				f.path, secret.line, p.profile)
		}
		for _, k := range unsupportedKeys {
			if v, ok := sec.keys[k]; ok {
				return aws.Credentials{}, fmt.Errorf("shared credentials: %s:%d: profile %q uses %s, which gps-agent does not support: give the profile static keys, or use the environment, web identity or [kinesis.iot]",
					f.path, v.line, p.profile, k)
			}
		}
		tried = append(tried, fmt.Sprintf("%s:%d (profile %q has no keys)", f.path, sec.line, p.profile))
	}
	tried = append(tried, p.noHome...)
	return aws.Credentials{}, fmt.Errorf("%w: tried the environment (AWS_ACCESS_KEY_ID), web identity (AWS_WEB_IDENTITY_TOKEN_FILE), and profile %q in %s",
		errNoCredentials, p.profile, strings.Join(tried, ", "))
}

// iniValue is a value of a shared file and the line it is on.
type iniValue struct {
	value string
	line  int
}

// iniSection is one profile of a shared file: its keys (lower case) and the
// line of its (first) header.
type iniSection struct {
	line int
	keys map[string]iniValue
}

// readProfile reads the section of profile from a shared credentials
// (config false) or config file. It returns nil and no error if the file has
// no such profile; errors name file:line. Sections of one name are merged,
// the last value of a key wins (as the SDK does).
func readProfile(path, profile string, config bool) (*iniSection, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("shared credentials: read %s: %w", path, err)
	}
	return parseProfile(path, b, profile, config)
}

func parseProfile(path string, b []byte, profile string, config bool) (*iniSection, error) {
	var (
		found    *iniSection
		inTarget bool // the current section is the profile
		inAny    bool // a section header has been seen
		lastKey  string
		lastVal  string
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		if n == 1 {
			raw = strings.TrimPrefix(raw, "\uFEFF")
		}
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return nil, fmt.Errorf("shared credentials: %s:%d: section header without ]", path, n)
			}
			if rest := strings.TrimSpace(line[end+1:]); rest != "" && rest[0] != '#' && rest[0] != ';' {
				return nil, fmt.Errorf("shared credentials: %s:%d: text after section header", path, n)
			}
			inAny, lastKey, lastVal = true, "", ""
			inTarget = sectionProfile(strings.TrimSpace(line[1:end]), config) == profile
			if inTarget && found == nil {
				found = &iniSection{line: n, keys: map[string]iniValue{}}
			}
			continue
		}
		// An indented line under a key with no value is a sub-property
		// (e.g. "s3 =" then "  max_concurrent_requests = 20"): not ours.
		if (raw[0] == ' ' || raw[0] == '\t') && lastKey != "" && lastVal == "" {
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("shared credentials: %s:%d: want key = value or [section]", path, n)
		}
		if !inAny {
			return nil, fmt.Errorf("shared credentials: %s:%d: key outside any [section]", path, n)
		}
		lastKey, lastVal = strings.ToLower(strings.TrimSpace(line[:eq])), strings.TrimSpace(line[eq+1:])
		if inTarget {
			found.keys[lastKey] = iniValue{value: lastVal, line: n}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("shared credentials: read %s: %w", path, err)
	}
	return found, nil
}

// sectionProfile is the profile a section header names: in the config file
// "default" or "profile NAME" (other kinds, like "sso-session NAME", name
// none), in the credentials file the header itself.
func sectionProfile(header string, config bool) string {
	if !config {
		return header
	}
	if header == "default" {
		return header
	}
	name, ok := strings.CutPrefix(header, "profile")
	if !ok || name == "" || (name[0] != ' ' && name[0] != '\t') {
		return ""
	}
	return strings.TrimSpace(name)
}
