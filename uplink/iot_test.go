package uplink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pki is a throwaway CA with a server certificate for 127.0.0.1 and client
// certificates, written as PEM files.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key}
	p.caFile = p.write(t, name+"-ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue returns the cert and key files of a new leaf certificate.
func (p *pki) issue(t *testing.T, name string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+".key", "EC PRIVATE KEY", kder)
}

// iotServer is a stand-in for the IoT credentials provider: mutual TLS with
// clients of ca, one role alias and thing.
type iotServer struct {
	url      string
	requests atomic.Int32
	reply    atomic.Value // func(w http.ResponseWriter)
}

func newIoTServer(t *testing.T, ca *pki) *iotServer {
	t.Helper()
	s := &iotServer{}
	s.reply.Store(func(w http.ResponseWriter) { writeIoTCreds(w, time.Now().Add(time.Hour)) })
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if r.URL.Path != "/role-aliases/gps-agent-role/credentials" || r.Header.Get("x-amzn-iot-thingname") != "truck-7" {
			http.Error(w, `{"message":"Role alias does not exist"}`, http.StatusNotFound)
			return
		}
		s.reply.Load().(func(http.ResponseWriter))(w)
	}))
	certFile, keyFile := ca.issue(t, "server", true)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.ca)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func writeIoTCreds(w http.ResponseWriter, exp time.Time) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"credentials":{"accessKeyId":"ASIAIOTTEST","secretAccessKey":"iot-secret","sessionToken":"iot-session-token","expiration":%q}}`,
		exp.UTC().Format(time.RFC3339))
}

func TestIoTCredentials(t *testing.T) {
	ca := newPKI(t, "test")
	srv := newIoTServer(t, ca)
	certFile, keyFile := ca.issue(t, "truck-7", false)
	other := newPKI(t, "other")
	badCert, badKey := other.issue(t, "intruder", false)
	good := IoTConfig{Endpoint: strings.TrimPrefix(srv.url, "https://"), RoleAlias: "gps-agent-role", ThingName: "truck-7",
		CertFile: certFile, KeyFile: keyFile, CAFile: ca.caFile}

	tests := []struct {
		name      string
		cfg       func(IoTConfig) IoTConfig
		reply     func(http.ResponseWriter)
		retrieves int
		wantReqs  int32  // requests to the server over the retrieves
		wantErr   string // substring; "" for success
		notInErr  string
	}{
		{name: "good credentials cached", retrieves: 3, wantReqs: 1},
		{name: "refreshed before expiry",
			reply:     func(w http.ResponseWriter) { writeIoTCreds(w, time.Now().Add(3*time.Minute)) },
			retrieves: 3, wantReqs: 3},
		{name: "wrong client certificate", cfg: func(c IoTConfig) IoTConfig { c.CertFile, c.KeyFile = badCert, badKey; return c },
			retrieves: 1, wantErr: "iot credentials: get " + srv.url + "/role-aliases/gps-agent-role/credentials"},
		{name: "unknown server", cfg: func(c IoTConfig) IoTConfig { c.CAFile = other.caFile; return c },
			retrieves: 1, wantErr: "certificate signed by unknown authority"},
		{name: "bad json",
			reply:     func(w http.ResponseWriter) { fmt.Fprint(w, `{"credentials":{"secretAccessKey":"SECRET-XYZ",`) },
			retrieves: 1, wantReqs: 1, wantErr: "decode reply", notInErr: "SECRET-XYZ"},
		{name: "http error names status and body",
			reply: func(w http.ResponseWriter) {
				http.Error(w, `{"message":"Access Denied"}`, http.StatusForbidden)
			},
			retrieves: 1, wantReqs: 1, wantErr: `http 403: {"message":"Access Denied"}`},
		{name: "bad expiration",
			reply: func(w http.ResponseWriter) {
				fmt.Fprint(w, `{"credentials":{"accessKeyId":"a","secretAccessKey":"s","sessionToken":"t","expiration":"soon"}}`)
			},
			retrieves: 1, wantReqs: 1, wantErr: `expiration "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.requests.Store(0)
			reply := tt.reply
			if reply == nil {
				reply = func(w http.ResponseWriter) { writeIoTCreds(w, time.Now().Add(time.Hour)) }
			}
			srv.reply.Store(reply)
			cfg := good
			if tt.cfg != nil {
				cfg = tt.cfg(cfg)
			}
			p, err := newIoTProvider(cfg)
			if err != nil {
				t.Fatalf("new provider: %v", err)
			}
			cache := newIoTCredentialsCache(p)
			for range tt.retrieves {
				creds, err := cache.Retrieve(t.Context())
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("retrieve = %v, want error with %q", err, tt.wantErr)
					}
					if tt.notInErr != "" && strings.Contains(err.Error(), tt.notInErr) {
						t.Errorf("error leaks %q: %v", tt.notInErr, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("retrieve: %v", err)
				}
				if creds.AccessKeyID != "ASIAIOTTEST" || creds.SecretAccessKey != "iot-secret" ||
					creds.SessionToken != "iot-session-token" || !creds.CanExpire {
					t.Errorf("credentials = %+v", creds)
				}
			}
			if got := srv.requests.Load(); got != tt.wantReqs {
				t.Errorf("server requests = %d, want %d", got, tt.wantReqs)
			}
		})
	}
}

func TestIoTConfigErrors(t *testing.T) {
	ca := newPKI(t, "test")
	certFile, keyFile := ca.issue(t, "truck-7", false)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	base := IoTConfig{Endpoint: "x.credentials.iot.eu-west-1.amazonaws.com", RoleAlias: "r", ThingName: "truck-7",
		CertFile: certFile, KeyFile: keyFile}
	tests := []struct {
		name    string
		mod     func(*IoTConfig)
		wantErr string
	}{
		{name: "no endpoint", mod: func(c *IoTConfig) { c.Endpoint = "" }, wantErr: "no endpoint"},
		{name: "no role alias", mod: func(c *IoTConfig) { c.RoleAlias = "" }, wantErr: "no role alias"},
		{name: "no thing", mod: func(c *IoTConfig) { c.ThingName = "" }, wantErr: "no thing name"},
		{name: "missing certificate", mod: func(c *IoTConfig) { c.CertFile = missing }, wantErr: missing},
		{name: "key does not match", mod: func(c *IoTConfig) { _, c.KeyFile = ca.issue(t, "other", false) }, wantErr: "private key does not match"},
		{name: "missing ca", mod: func(c *IoTConfig) { c.CAFile = missing }, wantErr: missing},
		{name: "ca not pem", mod: func(c *IoTConfig) { c.CAFile = keyFile }, wantErr: "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.mod(&cfg)
			_, err := NewClient(t.Context(), ClientConfig{Region: "eu-west-1", IoT: &cfg})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewClient = %v, want error with %q", err, tt.wantErr)
			}
		})
	}
}
