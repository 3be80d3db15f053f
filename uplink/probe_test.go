package uplink

import (
	"context"
	"net"
	"net/http/httptrace"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// holeDialer fakes connects through a link that may be a black hole: a
// connect started in the hole hangs until its context ends (its SYN
// vanished), one started after the hole connects at once, and a refused
// link answers every connect with ECONNREFUSED.
type holeDialer struct {
	start time.Time

	mu       sync.Mutex
	hole     bool
	refused  bool
	attempts []time.Duration // when each connect began, since start
	inflight int
	most     int // most connects in flight at once
	closed   int // connections closed
}

type fakeConn struct {
	net.Conn
	d *holeDialer
}

func (c *fakeConn) Close() error {
	c.d.mu.Lock()
	c.d.closed++
	c.d.mu.Unlock()
	return nil
}

func (d *holeDialer) set(hole, refused bool) {
	d.mu.Lock()
	d.hole, d.refused = hole, refused
	d.mu.Unlock()
}

func (d *holeDialer) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	d.mu.Lock()
	d.attempts = append(d.attempts, time.Since(d.start))
	hole, refused := d.hole, d.refused
	d.inflight++
	d.most = max(d.most, d.inflight)
	d.mu.Unlock()
	defer func() { d.mu.Lock(); d.inflight--; d.mu.Unlock() }()
	switch {
	case refused:
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case hole:
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &fakeConn{d: d}, nil
}

// TestProbeRedials: while a probe's connect hangs in a black hole, a fresh
// connect goes every half second (the kernel would resend the SYN only 1 s
// later, then 3 s), never more than two in flight, so a SYN reaches a link
// that returns within half a second; the first to connect wins. Refused is
// an answer: no second connect. Calls that are not probes connect once.
func TestProbeRedials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &holeDialer{start: time.Now()}
		w := &wireCounter{}
		dial := w.dial(d.dial)
		d.set(true, false)
		probe := context.WithValue(t.Context(), probeKey{}, true) // as probeContext marks it
		type result struct {
			c   net.Conn
			err error
			at  time.Duration
		}
		got := make(chan result, 1)
		go func() {
			c, err := dial(probe, "tcp", "kinesis:443")
			got <- result{c, err, time.Since(d.start)}
		}()
		time.Sleep(1700 * time.Millisecond) // the hole lasts 1.7 s
		d.set(false, false)
		r := <-got
		if r.err != nil {
			t.Fatalf("probe dial: %v", r.err)
		}
		r.c.Close()
		synctest.Wait()
		d.mu.Lock()
		attempts, most, inflight := d.attempts, d.most, d.inflight
		d.mu.Unlock()
		t.Logf("connects at %v; connected at %v; at most %d in flight", attempts, r.at, most)
		if len(attempts) < 4 {
			t.Errorf("%d connects in 2 s of a black hole, want one every %v", len(attempts), redialEvery)
		}
		for i := 1; i < len(attempts); i++ {
			if gap := attempts[i] - attempts[i-1]; gap < redialEvery-time.Millisecond || gap > redialEvery+time.Millisecond {
				t.Errorf("connects %v apart, want %v", gap, redialEvery)
			}
		}
		if most > maxConnects || inflight != 0 {
			t.Errorf("%d connects in flight at most, %d left; want <= %d and 0", most, inflight, maxConnects)
		}
		if r.at > 1700*time.Millisecond+redialEvery {
			t.Errorf("connected %v after the hole closed, want within %v", r.at-1700*time.Millisecond, redialEvery)
		}

		// Refused: the link answered; one connect.
		d.attempts = nil
		d.set(false, true)
		if _, err := dial(probe, "tcp", "kinesis:443"); err == nil {
			t.Error("refused probe dial succeeded")
		}
		synctest.Wait()
		if len(d.attempts) != 1 {
			t.Errorf("%d connects on a refused link, want 1", len(d.attempts))
		}

		// Not a probe: one connect, which hangs for as long as its context.
		d.attempts = nil
		d.set(true, false)
		ctx, stop := context.WithTimeout(t.Context(), 3*time.Second)
		defer stop()
		if _, err := dial(ctx, "tcp", "kinesis:443"); err == nil {
			t.Error("dial into a black hole succeeded")
		}
		if len(d.attempts) != 1 {
			t.Errorf("%d connects for a call that is not a probe, want 1", len(d.attempts))
		}
	})
}

// TestProbeContext: a probe's connect has probeConnectWait; once connected,
// the call has its budget from then.
func TestProbeContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ctx, cancel := probeContext(t.Context(), 2*time.Second)
		defer cancel()
		<-ctx.Done()
		if d := time.Since(start); d != probeConnectWait {
			t.Errorf("unconnected probe given up after %v, want %v", d, probeConnectWait)
		}

		start = time.Now()
		ctx, cancel = probeContext(t.Context(), 2*time.Second)
		defer cancel()
		time.Sleep(700 * time.Millisecond)
		httptrace.ContextClientTrace(ctx).ConnectDone("tcp", "kinesis:443", nil) // as net.Dialer reports it
		<-ctx.Done()
		if d := time.Since(start); d != 2700*time.Millisecond {
			t.Errorf("probe connected at 700 ms given up after %v, want 2.7 s", d)
		}

		// A pooled connection: the budget runs from the start.
		start = time.Now()
		ctx, cancel = probeContext(t.Context(), 2*time.Second)
		defer cancel()
		httptrace.ContextClientTrace(ctx).GotConn(httptrace.GotConnInfo{Reused: true})
		<-ctx.Done()
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("probe on a pooled connection given up after %v, want 2 s", d)
		}
	})
}
