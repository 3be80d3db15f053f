package uplink

import (
	"context"
	"net"
	"net/http/httptrace"
	"sync"
	"time"
)

// Probing a down link. A probe is a call of the newest record alone while
// the link is down (nextBatch). In a black hole its TCP connect hangs: the
// SYN vanishes, and the kernel sends the next one 1 s later, then 2 s and
// 4 s after that. On a poor link a SYN that gets through still needs about
// three round trips (TCP, TLS, the call: ~1 s at 300 ms) before the link is
// known to be back, so what sets the time to notice is how long after the
// link's return the next SYN goes. A probe therefore starts a fresh connect
// every redialEvery while none has an answer, at most maxConnects at once,
// and gives its connect probeEvery before the next probe (the next fix) takes
// over; once connected it has the usual probe timeout for TLS and the call.
// While the link is down that costs two SYNs a second (60 B each, none of
// them TLS), in the first five minutes of an outage only (then a probe goes
// every 5 s).
const (
	// redialEvery is how long a probe's connect waits for an answer before
	// another starts beside it: half the kernel's first SYN timeout, and
	// above a cellular round trip, so a connect that is only slow is rarely
	// doubled.
	redialEvery = 500 * time.Millisecond
	// maxConnects is the most connects a probe keeps in flight: a third
	// abandons the oldest (a connect that never got an answer sends
	// nothing when it is closed).
	maxConnects = 2
	// probeConnectWait is how long a probe's connects may try before it
	// is given up and the next fix's probe takes over.
	probeConnectWait = probeEvery
)

// probeKey marks the context of a probe's call, for the dialer.
type probeKey struct{}

// probeContext returns the context of a probe's call within ctx: marked for
// the dialer (redial), given up after probeConnectWait unless connected,
// and after budget from the moment it has a connection. cancel must be
// called when the call returns.
func probeContext(ctx context.Context, budget time.Duration) (context.Context, context.CancelFunc) {
	pctx, cancel := context.WithCancel(context.WithValue(ctx, probeKey{}, true))
	timer := time.AfterFunc(probeConnectWait, cancel)
	var once sync.Once
	connected := func() { once.Do(func() { timer.Reset(budget) }) }
	pctx = httptrace.WithClientTrace(pctx, &httptrace.ClientTrace{
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				connected()
			}
		},
		GotConn: func(httptrace.GotConnInfo) { connected() }, // a pooled connection
	})
	return pctx, func() {
		timer.Stop()
		cancel()
	}
}

// dialFunc opens a connection, as net.Dialer.DialContext does.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// isProbe reports whether ctx is a probe's (probeContext).
func isProbe(ctx context.Context) bool {
	p, _ := ctx.Value(probeKey{}).(bool)
	return p
}

// redial connects with dial, starting another connect every redialEvery
// while none has an answer and keeping at most maxConnects in flight (a new
// one abandons the oldest). The first to connect wins and any other that
// connects later is closed. A connect that fails (refused, no route: the
// link answered) ends the dial with its error; so does dialTimeout.
func redial(ctx context.Context, dial dialFunc, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	type result struct {
		id   int
		conn net.Conn
		err  error
	}
	type attempt struct {
		id       int
		cancel   context.CancelFunc
		finished chan struct{} // closed when its dial has returned
	}
	results := make(chan result)
	done := make(chan struct{})
	defer close(done) // connects still going close what they get
	var (
		inflight []attempt // oldest first
		next     int
	)
	start := func() {
		actx, acancel := context.WithCancel(ctx)
		id := next
		next++
		finished := make(chan struct{})
		inflight = append(inflight, attempt{id, acancel, finished})
		go func() {
			defer acancel()
			c, err := dial(actx, network, addr)
			close(finished)
			select {
			case results <- result{id, c, err}:
			case <-done:
				if c != nil {
					c.Close()
				}
			}
		}()
	}
	start()
	tick := time.NewTicker(redialEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
			if len(inflight) >= maxConnects {
				// The oldest is abandoned, and its dial has returned before the next starts: never more than
				// maxConnects in flight. (What it returns still comes as a result: a connection is taken.)
				old := inflight[0]
				old.cancel()
				inflight = inflight[1:]
				select {
				case <-old.finished:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			start()
		case r := <-results:
			if r.err == nil {
				return r.conn, nil
			}
			abandoned := true
			for i, a := range inflight {
				if a.id == r.id {
					inflight = append(inflight[:i], inflight[i+1:]...)
					abandoned = false
					break
				}
			}
			if !abandoned {
				return nil, r.err
			}
		}
	}
}
