package nmea

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"go.bug.st/serial"
)

// Receiver timing. The read timeout bounds how long a silent port goes
// unnoticed; idleFlush closes the pending epoch when the receiver has paused
// (between 1 Hz bursts there are ~900 ms of silence, inside a burst at 4800
// baud a byte every 2 ms), so the last epoch is not held until the next one.
const (
	readTimeout = 100 * time.Millisecond
	idleFlush   = 300 * time.Millisecond
	backoffMin  = 250 * time.Millisecond
	backoffMax  = 10 * time.Second
)

// OpenPort opens a serial device once at baud (8N1, no flow control) with a
// read timeout, so reads return regularly even on a silent port. The error
// names the device: "open receiver /dev/ttyUSB9: no such file or directory".
func OpenPort(device string, baud int) (io.ReadCloser, error) {
	if baud <= 0 {
		return nil, fmt.Errorf("open receiver %s: invalid baud rate %d", device, baud)
	}
	p, err := serial.Open(device, &serial.Mode{BaudRate: baud})
	if err != nil {
		return nil, fmt.Errorf("open receiver %s: %w", device, err)
	}
	if err := p.SetReadTimeout(readTimeout); err != nil {
		p.Close()
		return nil, fmt.Errorf("open receiver %s: set read timeout: %w", device, err)
	}
	return p, nil
}

// Receiver owns one serial device: it opens it, reads and decodes, and calls
// OnFix for each fix. When the device errors or vanishes (USB unplugged, pty
// closed) it closes it and reopens it with capped exponential backoff
// (250 ms doubling to 10 s, reset after a successful read), until ctx ends.
//
// Fields must be set before Run and not changed while it runs.
type Receiver struct {
	Device   string       // path of the serial device, e.g. /dev/ttyUSB0 or a udev symlink
	Baud     int          // baud rate, e.g. 9600 (0 means 9600)
	OnFix    func(Fix)    // called from Run's goroutine, one fix per epoch, in order
	Log      *slog.Logger // nil: slog.Default()
	Counters *Counters    // nil: counted privately

	// open replaces OpenPort in tests.
	open func(device string, baud int) (io.ReadCloser, error)
}

// Run reads the receiver until ctx ends, then returns ctx.Err(). Errors of
// the device are logged (once per state change) and retried, never returned.
func (r *Receiver) Run(ctx context.Context) error {
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("device", r.Device)
	c := r.Counters
	if c == nil {
		c = new(Counters)
	}
	baud := r.Baud
	if baud == 0 {
		baud = 9600
	}
	open := r.open
	if open == nil {
		open = OpenPort
	}
	d := NewDecoder(r.OnFix, c, log)
	backoff := backoffMin
	failing := false
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		port, err := open(r.Device, baud)
		if err == nil {
			if attempt > 0 {
				c.reconnects.Add(1)
			}
			log.Info("receiver open", "baud", baud)
			failing = false
			var got bool
			got, err = r.read(ctx, port, d)
			d.Flush()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if got {
				backoff = backoffMin
			}
			err = fmt.Errorf("read receiver %s: %w", r.Device, err)
		}
		if !failing {
			log.Warn("receiver unavailable, retrying", "err", err, "backoff", backoff)
			failing = true
		} else {
			log.Debug("receiver still unavailable", "err", err, "backoff", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// read pumps port into d until the port fails or ctx ends; it always closes
// port. got reports whether any byte arrived.
func (r *Receiver) read(ctx context.Context, port io.ReadCloser, d *Decoder) (got bool, err error) {
	// Closing the port is what interrupts a blocked Read on cancel.
	stop := context.AfterFunc(ctx, func() { port.Close() })
	defer func() {
		if stop() {
			port.Close()
		}
	}()
	buf := make([]byte, 4096)
	var idle time.Duration
	last := time.Now()
	flushed := true
	for {
		n, err := port.Read(buf)
		if n > 0 {
			got = true
			d.Write(buf[:n])
			last = time.Now()
			flushed = false
		}
		if err != nil {
			if ctx.Err() != nil {
				return got, ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return got, err
		}
		if n == 0 {
			if idle = time.Since(last); idle >= idleFlush && !flushed {
				d.Flush()
				flushed = true
			}
		}
	}
}
