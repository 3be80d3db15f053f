package nmea

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.bug.st/serial"
)

// Receiver timing. The read timeout bounds how long a silent port goes
// unnoticed; idleFlush hands on the open epoch's fix when the receiver has
// paused (between 1 Hz bursts there are several hundred ms of silence,
// inside a burst at 4800 baud a byte every 2 ms), so that an epoch of a
// receiver whose cycle ender is not learned yet is not held until the next
// one. Once the ender is learned, epochs close on it, and the idle flush
// waits for enderLost: longer than a pause inside a burst, so the part of
// the epoch after it still makes the fix; it closes the last epoch of a
// receiver that stopped in mid-cycle.
const (
	readTimeout = 100 * time.Millisecond
	idleFlush   = 300 * time.Millisecond
	enderLost   = time.Second
	backoffMin  = 250 * time.Millisecond
	backoffMax  = 10 * time.Second

	// DefaultSilenceAfter is Receiver.SilenceAfter when zero: ten epochs of a
	// 1 Hz receiver, long enough not to cry wolf over a cold start's pause.
	DefaultSilenceAfter = 10 * time.Second
	// DefaultSummaryEvery is Receiver.SummaryEvery when zero.
	DefaultSummaryEvery = time.Minute

	// probeWindow is how long auto-baud listens at one rate, and
	// probeSentences how many checksummed sentences prove the rate: at
	// 4800 baud a 1 Hz receiver sends its whole burst within a second, and
	// garbage at a wrong rate passes an 8-bit checksum about 1 in 256 times
	// when it frames at all, so two in a row are no accident.
	probeWindow    = 1500 * time.Millisecond
	probeSentences = 2
)

// probeRates are the rates auto-baud tries after the configured and the
// remembered one, most common for GNSS receivers first.
var probeRates = [...]int{4800, 9600, 19200, 38400, 57600, 115200}

// OpenPort opens a serial device once at baud (8N1, no flow control) with a
// read timeout, so reads return regularly even on a silent port. The error
// names the device: "open receiver /dev/ttyUSB9: no such file or directory".
// A baud of 0 opens at 9600 (auto-baud probes after opening).
func OpenPort(device string, baud int) (io.ReadCloser, error) {
	if baud == 0 {
		baud = 9600
	}
	if baud < 0 {
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
// closed, udev symlink gone) it closes it and reopens it by path with capped
// exponential backoff (250 ms doubling to 10 s, reset after a session that
// delivered data), until ctx ends.
//
// Auto-baud (AutoBaud, or Baud 0): each open listens up to 1.5 s for two
// checksummed sentences; if none come it tries the next rate: the one that
// worked last, Baud, then 4800, 9600, 19200, 38400, 57600, 115200. The rate that worked is remembered
// ([Receiver.CurrentBaud]) and tried first on reopen.
//
// Silence: an open device that sends no checksummed sentence for
// SilenceAfter is logged once per episode (Warn), counted in
// Stats.Silences; Counters.LastSentence says since when.
//
// Every SummaryEvery, if anything was dropped, one Warn line sums the
// counters that grew (rate-limited: never a line per bad sentence).
//
// gpsd (Gpsd set): instead of the device, Run connects to gpsd, asks for the
// receiver's NMEA and decodes it the same way, so the fixes are those of the
// serial port; gpsd not running, or restarted, is a device that is not there:
// reconnected with the same backoff. gpsd drops sentences with bad checksums
// before relaying, so the counters differ from the serial port's.
//
// A modem's GNSS engine (AT set): its commands are sent on the modem's AT
// port each time the device (or gpsd) is opened, and again every SilenceAfter
// while the open device stays silent. [Receiver.Link] reports the source's
// state and the modem's last answers.
//
// Fields must be set before Run and not changed while it runs. Run must not
// be called twice at the same time on one Receiver.
type Receiver struct {
	Device       string        // path of the serial device, e.g. /dev/ttyUSB0 or a udev symlink
	Gpsd         string        // HOST:PORT of gpsd, read instead of Device (gpsd.go); Baud is then unused
	AT           *ATConfig     // a modem's GNSS engine to start with AT commands (at.go); nil: none
	Baud         int           // baud rate, e.g. 9600; 0 means auto-baud
	AutoBaud     bool          // probe rates when Baud does not deliver sentences (implied by Baud 0)
	SilenceAfter time.Duration // silence that is reported; 0: DefaultSilenceAfter
	SummaryEvery time.Duration // period of the dropped-input summary line; 0: DefaultSummaryEvery
	OnFix        func(Fix)     // called from Run's goroutine, one fix per epoch, in order
	Log          *slog.Logger  // nil: slog.Default()
	Counters     *Counters     // nil: counted privately

	// open replaces OpenPort in tests.
	open func(device string, baud int) (io.ReadCloser, error)

	cur  atomic.Int64 // baud rate that delivered sentences last, 0 if none yet
	beat atomic.Int64 // monotonic ns since clockBase of the loop's last step (a read returned or an open was tried), +1; 0: none

	mu    sync.Mutex
	state LinkState // guarded by mu; see Link
}

// clockBase anchors heartbeats on the monotonic clock: a heartbeat is stored
// as the time elapsed since it, so a step of the wall clock (NTP on a
// gateway without RTC) never moves it. Set once, read only.
var clockBase = time.Now()

// beatNow records a step of Run's loop.
func (r *Receiver) beatNow() { r.beat.Store(int64(time.Since(clockBase)) + 1) }

// Heartbeat is when Run's loop last made a step: a read returned (data or the read timeout) or an open of the
// device was tried. A silent or missing receiver still beats; only a stuck loop does not. Zero before Run.
// Safe to call while Run runs. The time carries a monotonic reading: compare it with time.Now() (Sub, Since),
// and a step of the wall clock changes nothing.
func (r *Receiver) Heartbeat() time.Time {
	if n := r.beat.Load(); n != 0 {
		return clockBase.Add(time.Duration(n - 1))
	}
	return time.Time{}
}

// CurrentBaud returns the rate at which the receiver last delivered
// checksummed sentences, 0 if it has not yet. Safe to call while Run runs.
func (r *Receiver) CurrentBaud() int { return int(r.cur.Load()) }

func (r *Receiver) auto() bool { return r.Gpsd == "" && (r.AutoBaud || r.Baud == 0) }

// name is the source as logs and errors name it: the device, or "gpsd HOST:PORT".
func (r *Receiver) name() string {
	if r.Gpsd != "" {
		return "gpsd " + r.Gpsd
	}
	return r.Device
}

// rates returns the rates to try, in order, for one sweep.
func (r *Receiver) rates() []int {
	if !r.auto() {
		return []int{r.Baud}
	}
	out := make([]int, 0, len(probeRates)+2)
	for _, b := range append([]int{r.CurrentBaud(), r.Baud}, probeRates[:]...) {
		if b > 0 && !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

// session is what Run remembers across reopens.
type session struct {
	log          *slog.Logger
	c            *Counters
	d            *Decoder
	silenceAfter time.Duration
	summaryEvery time.Duration

	heard       time.Time // last checksummed sentence, or the open that started the wait
	silent      bool
	restartDue  time.Time // while silent: when the modem's commands are sent again
	lastSummary time.Time
	prev        Stats
}

// Run reads the receiver until ctx ends, then returns ctx.Err(). Errors of
// the device are logged (once per state change) and retried, never returned.
func (r *Receiver) Run(ctx context.Context) error {
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("device", r.name())
	c := r.Counters
	if c == nil {
		c = new(Counters)
	}
	open := r.open
	if open == nil {
		open = OpenPort
	}
	if r.Gpsd != "" && r.open == nil {
		onJSON := r.gpsdJSON(log)
		open = func(string, int) (io.ReadCloser, error) { return dialGpsd(r.Gpsd, onJSON) }
	}
	r.setState(LinkStarting, nil)
	s := &session{
		log: log, c: c, d: NewDecoder(r.OnFix, c, log),
		silenceAfter: r.SilenceAfter, summaryEvery: r.SummaryEvery,
		lastSummary: time.Now(),
	}
	if s.silenceAfter <= 0 {
		s.silenceAfter = DefaultSilenceAfter
	}
	if s.summaryEvery <= 0 {
		s.summaryEvery = DefaultSummaryEvery
	}
	s.prev = c.Snapshot()
	var l link
	backoff := backoffMin
	for {
		var err error
		rates := r.rates()
		for i, baud := range rates {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var port io.ReadCloser
			r.beatNow()
			port, err = open(r.Device, baud)
			if err != nil {
				l.missing = true
				r.setState(LinkUnavailable, err)
				break // the device is not there: no point trying other rates
			}
			r.setState(LinkOpen, nil)
			reconnect, level := l.opened(i == 0)
			if reconnect {
				c.reconnects.Add(1)
			}
			log.Log(ctx, level, "receiver open", "baud", baud, "auto_baud", r.auto())
			if i == 0 {
				r.startEngine(ctx, log, "open")
			}
			if l.startSession() {
				s.heard = time.Now()
			}
			var got bool
			valid := s.d.valid
			got, err = r.read(ctx, port, s, baud)
			if s.d.valid != valid {
				l.failing = false // it worked for a while: a new failure is news
			}
			s.d.Flush()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if got {
				backoff = backoffMin
			}
			if !errors.Is(err, errNoSentences) {
				l.broke()
				err = fmt.Errorf("read receiver %s: %w", r.name(), err)
				r.setState(LinkUnavailable, err)
				break
			}
			if i == len(rates)-1 {
				err = fmt.Errorf("read receiver %s: auto-baud: no checksummed sentences at %v baud", r.name(), rates)
			}
		}
		if l.fail() {
			log.Warn("receiver unavailable, retrying", "err", err, "backoff", backoff)
		} else {
			log.Debug("receiver still unavailable", "err", err, "backoff", backoff)
		}
		if err := wait(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// link is the device's state as Run sees it across opens: what a new open
// counts, and how loudly a failure is logged.
type link struct {
	lost    bool // a session ended in a read error: the next open is a reconnect
	missing bool // the last open failed: the device was not there
	failing bool // a failure was logged and no sentence has come since
	session bool // a device session runs: opens for further baud rates do not restart the silence clock
}

// opened records a successful open, the first of a sweep of baud rates or
// not. It reports whether the open is a reconnect, and the level to log it
// at: Info once per healthy spell and when a missing device appears; Debug
// while auto-baud tries further rates or a failing device flaps.
func (l *link) opened(first bool) (reconnect bool, level slog.Level) {
	reconnect, level = l.lost, slog.LevelDebug
	if first && (!l.failing || l.missing) {
		level = slog.LevelInfo
	}
	l.lost, l.missing = false, false
	return reconnect, level
}

// startSession reports whether this open starts a device session, from
// which silence is timed.
func (l *link) startSession() bool {
	started := !l.session
	l.session = true
	return started
}

// broke records a session that ended in a read error.
func (l *link) broke() { l.lost, l.session = true, false }

// fail records a failed sweep and reports whether it is news (the first
// since the device last worked), to be logged as a warning.
func (l *link) fail() bool {
	news := !l.failing
	l.failing = true
	return news
}

// wait returns after d, or ctx.Err() when ctx ends first.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// read pumps port into the decoder until the port fails or ctx ends; it
// always closes port. got reports whether any byte arrived. In auto-baud
// mode, until the rate is proven, it gives up with errNoSentences after
// probeWindow.
func (r *Receiver) read(ctx context.Context, port io.ReadCloser, s *session, baud int) (got bool, err error) {
	// Closing the port is what interrupts a blocked Read on cancel.
	stop := context.AfterFunc(ctx, func() { port.Close() })
	defer func() {
		if stop() {
			port.Close()
		}
	}()
	d := s.d
	buf := make([]byte, 4096)
	opened := time.Now()
	probing := r.auto()
	valid0 := d.valid
	last := opened
	flushed := true
	for {
		n, err := port.Read(buf)
		now := time.Now()
		r.beatNow()
		if n > 0 {
			got = true
			before := d.valid
			d.Write(buf[:n])
			last = now
			flushed = false
			if d.valid != before {
				s.heard = now
				if s.silent {
					s.silent = false
					s.log.Info("receiver talking again", "baud", baud)
				}
			}
		}
		if probing && d.valid-valid0 >= probeSentences {
			probing = false
			if r.cur.Swap(int64(baud)) != int64(baud) {
				s.log.Info("receiver baud rate found", "baud", baud)
			}
		} else if !r.auto() && d.valid != valid0 {
			r.cur.Store(int64(baud))
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
		if n == 0 && !flushed && now.Sub(last) >= idleWait(d) {
			d.idle()
			flushed = true
		}
		if !s.silent && now.Sub(s.heard) >= s.silenceAfter {
			s.silent = true
			s.c.silences.Add(1)
			s.log.Warn("receiver silent: no valid sentence", "for", now.Sub(s.heard).Round(time.Millisecond),
				"baud", baud, "last_sentence", s.c.LastSentence())
			s.restartDue = now
		}
		// A modem that reset its GNSS engine may keep its ports open: start the engine again, and again every
		// SilenceAfter while it stays silent.
		if s.silent && r.AT != nil && !now.Before(s.restartDue) {
			r.startEngine(ctx, s.log, "silent")
			s.restartDue = time.Now().Add(s.silenceAfter)
		}
		if now.Sub(s.lastSummary) >= s.summaryEvery {
			s.summary(now)
		}
		if probing && now.Sub(opened) >= probeWindow {
			return got, errNoSentences
		}
	}
}

// idleWait is the silence after which the open epoch's fix is handed on.
func idleWait(d *Decoder) time.Duration {
	if d.enderKnown() {
		return enderLost
	}
	return idleFlush
}

// summary logs what was dropped since the last summary, if anything.
func (s *session) summary(now time.Time) {
	cur := s.c.Snapshot()
	prev := s.prev
	s.prev, s.lastSummary = cur, now
	if cur.Dropped() == prev.Dropped() && cur.GarbageBytes == prev.GarbageBytes {
		return
	}
	attrs := []any{"period", s.summaryEvery}
	var names []string
	var vals []uint64
	prev.Each(func(name string, n uint64) { names, vals = append(names, name), append(vals, n) })
	i := 0
	cur.Each(func(name string, n uint64) {
		if n != vals[i] {
			attrs = append(attrs, name, n-vals[i])
		}
		i++
	})
	s.log.Warn("receiver input dropped", attrs...)
}
