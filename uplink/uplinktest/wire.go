package uplinktest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Outage is how a Wire's link is down.
type Outage int

const (
	// NoOutage: the link is up.
	NoOutage Outage = iota
	// Refused: the far end says no at once. New connections are refused
	// (the listener is closed, so the kernel answers a SYN with a reset)
	// and open ones are reset.
	Refused
	// BlackHole: nothing answers and nothing is reset, as in a dead zone.
	// Open connections go silent for good, as if their NAT entry was lost:
	// what they send vanishes and nothing comes back, even after the hole.
	// New connections hang in connect when the Wire has a kernel hole (a
	// network namespace with a DROP rule, see NetNS); without one, a
	// userspace emulator cannot drop a SYN, so they are accepted and
	// silent for good.
	BlackHole
)

func (o Outage) String() string {
	switch o {
	case NoOutage:
		return "up"
	case Refused:
		return "refused"
	case BlackHole:
		return "black hole"
	}
	return fmt.Sprintf("Outage(%d)", int(o))
}

// WireConfig configures a Wire.
type WireConfig struct {
	// Target is the host:port the link leads to (a Proxy, or local Kinesis
	// itself).
	Target string
	// Profile is the link's shape at the start; SetProfile changes it.
	Profile Profile
	// Listen opens the listener clients connect to, on addr ("" the first
	// time: any free port; then the same address again after a Refused
	// outage). Nil listens on 127.0.0.1.
	Listen func(addr string) (net.Listener, error)
	// Hole, if set, drops every packet of the link in the kernel while on
	// is true, so that connects hang (NetNS.Hole).
	Hole func(on bool) error
}

// Meter is what crossed a Wire's client side: bytes at the client's
// socket (TLS records, handshakes included, for a TLS link; IP and TCP
// headers not counted) and connections.
type Meter struct {
	Up, Down int64 // bytes read from clients, bytes written to them
	Opened   int   // connections accepted
	Open     int   // connections open now
}

// ConnMeter is what crossed one connection's client side.
type ConnMeter struct {
	ID       int // 1, 2, ... in accept order
	Opened   time.Time
	Closed   time.Time // zero while open
	Up, Down int64
	Silent   bool // swallowed by a black hole
}

// Wire is a link emulator: a TCP relay from a listener to Target that adds
// a round trip and paces each direction through a shared bottleneck (see
// Profile), fails in either Outage at run time, and meters the bytes at the
// client's socket. It knows nothing of HTTP or TLS: bytes pass as they are.
type Wire struct {
	// Addr is the host:port clients connect to.
	Addr string

	cfg      WireConfig
	profile  atomic.Pointer[Profile]
	up, down bottleneck
	upBytes  atomic.Int64
	dnBytes  atomic.Int64
	opened   atomic.Int64

	mu      sync.Mutex
	ln      net.Listener  // nil while refusing
	changed chan struct{} // closed when ln changes
	outage  Outage
	conns   []*wireConn // every connection accepted, for the meters
	open    map[*wireConn]struct{}
}

// NewWire opens the Wire's listener; Run serves it.
func NewWire(cfg WireConfig) (*Wire, error) {
	if cfg.Listen == nil {
		cfg.Listen = func(addr string) (net.Listener, error) {
			if addr == "" {
				addr = "127.0.0.1:0"
			}
			return net.Listen("tcp", addr)
		}
	}
	ln, err := cfg.Listen("")
	if err != nil {
		return nil, fmt.Errorf("new wire: %w", err)
	}
	w := &Wire{Addr: ln.Addr().String(), cfg: cfg, ln: ln, changed: make(chan struct{}), open: map[*wireConn]struct{}{}}
	p := cfg.Profile
	w.profile.Store(&p)
	return w, nil
}

// SetProfile reshapes the link from the next segment on.
func (w *Wire) SetProfile(p Profile) { w.profile.Store(&p) }

// Profile returns the link's shape now.
func (w *Wire) Profile() Profile { return *w.profile.Load() }

// Outage returns the outage in force.
func (w *Wire) Outage() Outage {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.outage
}

// SetOutage takes the link down in the given way, or back up with
// NoOutage.
func (w *Wire) SetOutage(o Outage) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if o == w.outage {
		return nil
	}
	prev := w.outage
	w.outage = o
	var errs []error
	if o == Refused && w.ln != nil {
		errs = append(errs, w.ln.Close())
		w.setListener(nil)
	}
	if o != BlackHole && prev == BlackHole && w.cfg.Hole != nil {
		errs = append(errs, w.cfg.Hole(false))
	}
	for c := range w.open {
		switch o {
		case Refused:
			c.reset()
		case BlackHole:
			c.silence()
		}
	}
	if o == BlackHole && w.cfg.Hole != nil {
		errs = append(errs, w.cfg.Hole(true))
	}
	if o != Refused && w.ln == nil {
		ln, err := w.cfg.Listen(w.Addr)
		if err != nil {
			errs = append(errs, err)
		} else {
			w.setListener(ln)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("set outage %v: %w", o, err)
	}
	return nil
}

func (w *Wire) setListener(ln net.Listener) {
	w.ln = ln
	close(w.changed)
	w.changed = make(chan struct{})
}

// Meter returns the totals so far; safe at any time.
func (w *Wire) Meter() Meter {
	w.mu.Lock()
	open := len(w.open)
	w.mu.Unlock()
	return Meter{Up: w.upBytes.Load(), Down: w.dnBytes.Load(), Opened: int(w.opened.Load()), Open: open}
}

// Conns returns each connection's meter so far, in accept order.
func (w *Wire) Conns() []ConnMeter {
	w.mu.Lock()
	conns := append([]*wireConn(nil), w.conns...)
	w.mu.Unlock()
	out := make([]ConnMeter, len(conns))
	for i, c := range conns {
		out[i] = c.meter()
	}
	return out
}

// Run serves the link until ctx ends, then closes every connection and
// returns once they are gone.
func (w *Wire) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, w.shutdown)
	defer stop()
	for {
		w.mu.Lock()
		ln, changed := w.ln, w.changed
		w.mu.Unlock()
		if ln == nil {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
				continue
			}
		}
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// An outage closes the listener while holding mu: once mu is
			// ours, a replaced listener shows.
			w.mu.Lock()
			replaced := w.ln != ln
			w.mu.Unlock()
			if replaced {
				continue
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("run wire: accept: %w", err)
		}
		wc := w.admit(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			wc.serve(w)
		}()
	}
}

// shutdown closes the listener and every connection.
func (w *Wire) shutdown() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ln != nil {
		_ = w.ln.Close()
		w.setListener(nil)
	}
	for c := range w.open {
		c.close()
	}
}

// admit registers an accepted connection; one accepted in a black hole is
// silent from the start.
func (w *Wire) admit(c net.Conn) *wireConn {
	w.mu.Lock()
	defer w.mu.Unlock()
	wc := &wireConn{id: len(w.conns) + 1, opened: time.Now(), client: c, done: make(chan struct{})}
	if w.outage == BlackHole {
		wc.silent.Store(true)
	}
	w.conns = append(w.conns, wc)
	w.open[wc] = struct{}{}
	w.opened.Add(1)
	return wc
}

func (w *Wire) forget(c *wireConn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.open, c)
}

// shape reads the profile for one direction.
func (w *Wire) shape(up bool) func() (time.Duration, int64, int) {
	return func() (time.Duration, int64, int) {
		p := w.profile.Load()
		if up {
			return p.UpDelay, p.UpRate, p.Queue
		}
		return p.DownDelay, p.DownRate, p.Queue
	}
}
