package uplinktest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startWire runs a Wire for the test.
func startWire(t *testing.T, cfg WireConfig) *Wire {
	t.Helper()
	w, err := NewWire(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("wire: %v", err)
		}
	})
	return w
}

// echoServer echoes every connection back until it closes.
func echoServer(t *testing.T) string {
	t.Helper()
	return tcpServer(t, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

func tcpServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var conns sync.Map
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, nil)
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); serve(c) }()
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ping sends one byte and times its echo.
func ping(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte{1}); err != nil {
		t.Fatalf("ping: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("ping: %v", err)
	}
	return time.Since(start)
}

// The round trip is the profile's; under load a ping can only be late, so
// the fastest of a few is held to a tight bound and none may be early.
func TestWireRoundTrip(t *testing.T) {
	p := Profile{Name: "rtt", UpDelay: 70 * time.Millisecond, DownDelay: 30 * time.Millisecond}
	w := startWire(t, WireConfig{Target: echoServer(t), Profile: p})
	c := dial(t, w.Addr)
	best := time.Hour
	for range 5 {
		d := ping(t, c)
		if d < p.RTT() {
			t.Fatalf("echo in %v, faster than the %v round trip", d, p.RTT())
		}
		best = min(best, d)
	}
	t.Logf("best of 5 echoes: %v for a %v round trip", best, p.RTT())
	if best > p.RTT()+40*time.Millisecond {
		t.Errorf("best echo %v, want %v + at most 40 ms", best, p.RTT())
	}
	// Reshaped at run time.
	w.SetProfile(Loopback())
	if d := ping(t, c); d > 50*time.Millisecond {
		t.Logf("echo on loopback took %v (a loaded machine?)", d)
	}
}

// One large write crosses at the configured rate each way: bytes trickle
// through the bottleneck, they are not held and let go in a lump.
func TestWireBandwidth(t *testing.T) {
	const size = 1 << 20
	tests := []struct {
		name string
		p    Profile
		up   bool
	}{
		{"up 4 Mbit/s", Profile{Name: "up", UpDelay: 20 * time.Millisecond, DownDelay: 20 * time.Millisecond, UpRate: 4_000_000}, true},
		{"down 8 Mbit/s", Profile{Name: "down", UpDelay: 20 * time.Millisecond, DownDelay: 20 * time.Millisecond, DownRate: 8_000_000}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			arrived := make(chan [2]time.Time, 1) // first and last byte at the far end
			measure := func(r io.Reader) {
				buf := make([]byte, 64<<10)
				var first time.Time
				n := 0
				for n < size {
					k, err := r.Read(buf)
					if k > 0 && first.IsZero() {
						first = time.Now()
					}
					n += k
					if err != nil {
						break
					}
				}
				arrived <- [2]time.Time{first, time.Now()}
			}
			payload := bytes.Repeat([]byte("x"), size)
			var target string
			if tt.up {
				target = tcpServer(t, func(c net.Conn) { measure(c) })
			} else {
				target = tcpServer(t, func(c net.Conn) { _, _ = c.Write(payload) })
			}
			w := startWire(t, WireConfig{Target: target, Profile: tt.p})
			c := dial(t, w.Addr)
			rate := tt.p.DownRate
			if tt.up {
				rate = tt.p.UpRate
				go func() { _, _ = c.Write(payload) }()
			} else {
				go measure(c)
			}
			var span [2]time.Time
			select {
			case span = <-arrived:
			case <-time.After(30 * time.Second):
				t.Fatal("transfer did not finish")
			}
			// The first segment's arrival starts the clock: the rest
			// took their serialisation time.
			got := float64(size-segSize) * 8 / span[1].Sub(span[0]).Seconds()
			t.Logf("%d bytes at %.3f Mbit/s, configured %.3f", size, got/1e6, float64(rate)/1e6)
			if got > float64(rate)*1.03 || got < float64(rate)*0.90 {
				t.Errorf("throughput %.0f bit/s, want %d within +3 %% / -10 %%", got, rate)
			}
			// The meter counts a write once it returns, maybe just after
			// the far end read the bytes.
			want := Meter{Up: size, Opened: 1, Open: 1}
			if !tt.up {
				want = Meter{Down: size, Opened: 1, Open: 1}
			}
			if !eventually(func() bool { return w.Meter() == want }) {
				t.Errorf("meter %+v, want %+v", w.Meter(), want)
			}
		})
	}
}

// Refused: open connections are reset, new ones refused, and after the
// outage the link works again on the same address.
func TestWireRefused(t *testing.T) {
	w := startWire(t, WireConfig{Target: echoServer(t), Profile: Loopback()})
	c := dial(t, w.Addr)
	ping(t, c)
	if err := w.SetOutage(Refused); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("open connection read %v, want a reset", err)
	}
	if _, err := net.DialTimeout("tcp", w.Addr, 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial in the outage: %v, want connection refused", err)
	}
	if err := w.SetOutage(NoOutage); err != nil {
		t.Fatal(err)
	}
	ping(t, dial(t, w.Addr))
	if m := w.Meter(); m.Opened != 2 || m.Open != 1 {
		t.Errorf("meter %+v, want 2 opened, 1 open", m)
	}
}

// silent asserts nothing comes back on c: no bytes, no end, no reset.
func silent(t *testing.T, c net.Conn, what string) {
	t.Helper()
	if _, err := c.Write([]byte{1}); err != nil {
		t.Errorf("%s: write: %v", what, err)
	}
	c.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%s: read %d bytes, %v; want silence (a timeout)", what, n, err)
	}
}

// A userspace black hole silences open connections for good and accepts
// new ones into silence; connections made after it work.
func TestWireBlackHoleUserspace(t *testing.T) {
	w := startWire(t, WireConfig{Target: echoServer(t), Profile: Loopback()})
	before := dial(t, w.Addr)
	ping(t, before)
	if err := w.SetOutage(BlackHole); err != nil {
		t.Fatal(err)
	}
	silent(t, before, "open connection")
	silent(t, dial(t, w.Addr), "connection made in the hole")
	if err := w.SetOutage(NoOutage); err != nil {
		t.Fatal(err)
	}
	ping(t, dial(t, w.Addr))
	silent(t, before, "connection from before the hole, after it")
	var silenced int
	for _, c := range w.Conns() {
		if c.Silent {
			silenced++
		}
	}
	if silenced != 2 {
		t.Errorf("conns %+v, want 2 silent", w.Conns())
	}
}

// eventually polls cond for up to 5 s; false if it never held.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			return false
		}
		wait(5*time.Millisecond, nil)
	}
	return true
}
