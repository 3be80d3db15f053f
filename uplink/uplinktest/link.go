package uplinktest

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// Kernel says whether a Link's black hole is made in the kernel.
type Kernel int

const (
	// UserspaceHole: no namespace; in a black hole, new connections are
	// accepted and silent (a userspace emulator cannot drop a SYN).
	UserspaceHole Kernel = iota
	// KernelHoleIfAble: a network namespace with a DROP rule when
	// NetNSUnavailable allows one, else a userspace hole (logged).
	KernelHoleIfAble
	// KernelHole: a network namespace or the test is skipped, for tests
	// about connects that hang.
	KernelHole
)

// LinkOptions configures NewLink.
type LinkOptions struct {
	// Profile is the link's shape at the start (Loopback if zero).
	Profile Profile
	// TLS terminates TLS in front of local Kinesis and offers HTTP/2 by
	// ALPN, as AWS endpoints do; the CA to trust is in Link.CAFile.
	TLS bool
	// Kernel chooses how a black hole is made.
	Kernel Kernel
	// Seed seeds the Proxy's fault draws.
	Seed uint64
}

// Link is an emulated cellular link from a client to local Kinesis:
// client -> Wire (round trip, bandwidth, outages, byte meters) -> Proxy
// (TLS and HTTP/2 if asked, AWS's reply headers, HTTP-level faults) ->
// local Kinesis. The Wire's methods are the Link's: SetProfile, SetOutage,
// Meter, Conns.
type Link struct {
	*Wire
	// URL is the endpoint to point a client at: https://ADDR with TLS,
	// http://ADDR without.
	URL string
	// CAFile holds the CA to trust for a TLS link (AWS_CA_BUNDLE); "" for
	// plain HTTP.
	CAFile string
	// Proxy is behind the link: HTTP-level faults (Set) and counts,
	// HTTP2 among them.
	Proxy *Proxy
	// NetNS is the namespace the link listens in, nil for a userspace
	// hole.
	NetNS *NetNS
}

// NewLink starts a link to upstream (local Kinesis's http:// endpoint).
// Everything it starts is stopped on test cleanup.
func NewLink(t testing.TB, upstream string, o LinkOptions) *Link {
	t.Helper()
	if o.Profile == (Profile{}) {
		o.Profile = Loopback()
	}
	l := &Link{}
	listen := (func(string) (net.Listener, error))(nil)
	var hosts []string
	if o.Kernel != UserspaceHole {
		why := NetNSUnavailable()
		var err error
		if why == "" {
			l.NetNS, err = NewNetNS()
			if err != nil {
				why = err.Error()
			}
		}
		switch {
		case why != "" && o.Kernel == KernelHole:
			t.Skipf("link: needs a kernel black hole: %s", why)
		case why != "":
			t.Logf("link: userspace black hole (connects are accepted): %s", why)
		default:
			ns := l.NetNS
			t.Cleanup(func() {
				if err := ns.Close(); err != nil {
					t.Errorf("link: %v", err)
				}
			})
			listen = ns.Listen
			hosts = append(hosts, ns.Addr.String())
		}
	}
	po := ProxyOptions{Seed: o.Seed, Hosts: hosts}
	if o.TLS {
		po.CAFile = filepath.Join(t.TempDir(), "link-ca.pem")
	}
	p, err := StartProxy(upstream, po)
	if err != nil {
		t.Fatalf("link: %v", err)
	}
	t.Cleanup(p.Close)
	l.Proxy, l.CAFile = p, p.CAFile
	cfg := WireConfig{Target: strings.TrimPrefix(strings.TrimPrefix(p.URL, "https://"), "http://"), Profile: o.Profile, Listen: listen}
	if l.NetNS != nil {
		cfg.Hole = l.NetNS.Hole
	}
	w, err := NewWire(cfg)
	if err != nil {
		t.Fatalf("link: %v", err)
	}
	l.Wire = w
	scheme := "http://"
	if o.TLS {
		scheme = "https://"
	}
	l.URL = scheme + w.Addr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	// Registered last, so it runs first: the wire stops before the proxy
	// and the namespace it leads to and listens in.
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("link: %v", err)
		}
	})
	return l
}

// MustOutage is SetOutage failing the test on error.
func (l *Link) MustOutage(t testing.TB, o Outage) {
	t.Helper()
	if err := l.SetOutage(o); err != nil {
		t.Fatalf("link: %v", err)
	}
}
