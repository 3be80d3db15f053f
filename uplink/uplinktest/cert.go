package uplinktest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// certChain is a CA, an intermediate and a leaf key, shaped like what an
// AWS endpoint presents: RSA 2048 throughout, the leaf and the intermediate
// sent in the handshake, so that a TLS link's handshake costs about the
// bytes a truck pays for one. Real AWS leaves also carry Certificate
// Transparency SCTs and more names; the leaf here carries a stand-in SCT
// list of typical size.
type certChain struct {
	rootPEM   []byte
	inter     *x509.Certificate
	interDER  []byte
	interKey  *rsa.PrivateKey
	leafKey   *rsa.PrivateKey
	notBefore time.Time
}

// theChain is made once per process: three RSA keys take a second or more
// on a loaded machine. It never changes once made; leaves are signed per
// proxy.
var theChain = sync.OnceValues(newCertChain)

func newCertChain() (*certChain, error) {
	var keys [3]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("make test certificates: %w", err)
		}
		keys[i] = k
	}
	now := time.Now().Add(-time.Hour)
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"gps-agent test"}, CommonName: "gps-agent test Root CA 1"},
		NotBefore: now, NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &keys[0].PublicKey, keys[0])
	if err != nil {
		return nil, fmt.Errorf("make test root: %w", err)
	}
	root, _ = x509.ParseCertificate(rootDER)
	inter := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{Country: []string{"US"}, Organization: []string{"gps-agent test"}, CommonName: "gps-agent test RSA 2048 M02"},
		NotBefore: now, NotAfter: now.Add(5 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		OCSPServer:            []string{"http://ocsp.rootca1.example.com"},
		IssuingCertificateURL: []string{"http://crt.rootca1.example.com/rootca1.cer"},
		CRLDistributionPoints: []string{"http://crl.rootca1.example.com/rootca1.crl"},
	}
	interDER, err := x509.CreateCertificate(rand.Reader, inter, root, &keys[1].PublicKey, keys[0])
	if err != nil {
		return nil, fmt.Errorf("make test intermediate: %w", err)
	}
	inter, _ = x509.ParseCertificate(interDER)
	return &certChain{
		rootPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}),
		inter:   inter, interDER: interDER, interKey: keys[1], leafKey: keys[2], notBefore: now,
	}, nil
}

// oidSCTList is the Certificate Transparency SCT list extension.
var oidSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}

// serverTLS returns a TLS configuration whose leaf names 127.0.0.1 and
// hosts (IP addresses or DNS names), and the CA to trust, in PEM.
func serverTLS(hosts ...string) (*tls.Config, []byte, error) {
	ch, err := theChain()
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	leaf := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "kinesis." + Region + ".amazonaws.com"},
		DNSNames:    []string{"kinesis." + Region + ".amazonaws.com", "*.kinesis." + Region + ".amazonaws.com", "*.control-kinesis." + Region + ".amazonaws.com", "*.data-kinesis." + Region + ".amazonaws.com"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   ch.notBefore, NotAfter: ch.notBefore.Add(395 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		OCSPServer:            []string{"http://ocsp.r2m02.example.com"},
		IssuingCertificateURL: []string{"http://crt.r2m02.example.com/r2m02.cer"},
		CRLDistributionPoints: []string{"http://crl.r2m02.example.com/r2m02.crl"},
		PolicyIdentifiers:     []asn1.ObjectIdentifier{{2, 23, 140, 1, 2, 1}},
		// Three SCTs of about 119 bytes, as public CAs embed; clients
		// other than browsers do not check them.
		ExtraExtensions: []pkix.Extension{{Id: oidSCTList, Value: make([]byte, 3*119+6)}},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ch.inter, &ch.leafKey.PublicKey, ch.interKey)
	if err != nil {
		return nil, nil, fmt.Errorf("make test leaf: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der, ch.interDER}, PrivateKey: ch.leafKey}}}
	return cfg, ch.rootPEM, nil
}
