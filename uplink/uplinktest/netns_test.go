package uplinktest

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// newTestNetNS makes a namespace for the test, or skips saying why it
// cannot.
func newTestNetNS(t *testing.T) *NetNS {
	t.Helper()
	if why := NetNSUnavailable(); why != "" {
		t.Skipf("kernel black hole: %s", why)
	}
	ns, err := NewNetNS()
	if err != nil {
		t.Skipf("kernel black hole: %v", err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return ns
}

// In a kernel black hole a connect hangs (its SYN is dropped: no accept,
// no refusal) and an open connection goes silent; a refused link refuses;
// after either, connects work again.
func TestWireBlackHoleKernel(t *testing.T) {
	ns := newTestNetNS(t)
	w := startWire(t, WireConfig{Target: echoServer(t), Profile: Loopback(), Listen: ns.Listen, Hole: ns.Hole})
	if host, _, _ := net.SplitHostPort(w.Addr); host != ns.Addr.String() {
		t.Fatalf("wire listens on %s, want the namespace's %s", w.Addr, ns.Addr)
	}
	before := dial(t, w.Addr)
	ping(t, before)

	if err := w.SetOutage(BlackHole); err != nil {
		t.Fatal(err)
	}
	silent(t, before, "open connection")
	start := time.Now()
	c, err := net.DialTimeout("tcp", w.Addr, time.Second)
	var ne net.Error
	if err == nil {
		c.Close()
		t.Errorf("connect in the hole succeeded")
	} else if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("connect in the hole: %v after %v, want it to hang until its timeout", err, time.Since(start))
	}
	if m := w.Meter(); m.Opened != 1 {
		t.Errorf("meter %+v: a connection was accepted in the hole", m)
	}

	if err := w.SetOutage(Refused); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", w.Addr, 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connect while refused: %v, want connection refused", err)
	}
	if err := w.SetOutage(NoOutage); err != nil {
		t.Fatal(err)
	}
	ping(t, dial(t, w.Addr))
}
