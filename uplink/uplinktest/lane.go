package uplinktest

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// segSize is the size of the packets the link serialises one after
// another: about a TCP segment, so that a large write trickles out at the
// link's rate instead of arriving in one lump.
const segSize = 1448

// bottleneck is one direction of a link: a FIFO that serialises every
// connection's bytes at one rate. It is a delay line, not a sleep per
// chunk: a segment leaves when the one before it has been serialised and
// arrives a one-way delay later, while the reader goes on reading.
type bottleneck struct {
	mu   sync.Mutex
	free time.Time // when the link has serialised everything queued so far
}

// reserve queues n bytes at now and returns when they arrive at the far
// end, and how long the queue waits to be serialised after them.
func (b *bottleneck) reserve(n int, now time.Time, delay time.Duration, bps int64) (arrive time.Time, backlog time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	start := b.free
	if start.Before(now) {
		start = now
	}
	b.free = start.Add(serialise(n, bps))
	return b.free.Add(delay), b.free.Sub(now)
}

// segment is a run of bytes on its way across the link; eof marks the
// sender's end of stream, delivered after everything before it.
type segment struct {
	b      []byte
	arrive time.Time
	eof    bool
}

// lane carries one direction of one connection: read from src, queue
// through the bottleneck, deliver to dst when due.
type lane struct {
	src, dst net.Conn
	link     *bottleneck
	shape    func() (delay time.Duration, bps int64, queue int)
	// client counts the bytes crossing the client's socket this way: read
	// from it going up, written to it coming down.
	client      *atomic.Int64
	total       *atomic.Int64
	countOnRead bool
	silent      *atomic.Bool // a black hole swallowed the connection
	done        <-chan struct{}
	q           chan segment
}

// read feeds the delay line until src ends or fails; it waits only while
// the bottleneck's buffer is full. It returns nil at src's end of stream
// (passed on after the bytes before it), the error if src failed, and any
// end at all once the connection is silent.
func (l *lane) read() error {
	defer close(l.q)
	buf := make([]byte, 32<<10)
	for {
		n, err := l.src.Read(buf)
		if n > 0 {
			if l.countOnRead {
				l.client.Add(int64(n))
				l.total.Add(int64(n))
			}
			if !l.silent.Load() {
				if !l.queue(buf[:n]) {
					return nil
				}
			}
		}
		if err != nil {
			if l.silent.Load() {
				return err
			}
			delay, _, _ := l.shape()
			arrive, _ := l.link.reserve(0, time.Now(), delay, 0)
			select {
			case l.q <- segment{arrive: arrive, eof: true}:
			case <-l.done:
			}
			if errors.Is(err, io.EOF) {
				return nil // a half close, passed on in turn
			}
			return err
		}
	}
}

// queue schedules b segment by segment; false if the connection ended.
func (l *lane) queue(b []byte) bool {
	data := append([]byte(nil), b...)
	for off := 0; off < len(data); off += segSize {
		seg := data[off:min(off+segSize, len(data))]
		delay, bps, queue := l.shape()
		if queue <= 0 {
			queue = DefaultQueue
		}
		now := time.Now()
		arrive, backlog := l.link.reserve(len(seg), now, delay, bps)
		select {
		case l.q <- segment{b: seg, arrive: arrive}:
		case <-l.done:
			return false
		}
		// The buffer is full: stop reading until it has room, so the
		// sender's TCP sees the link's pace.
		if over := backlog - serialise(queue, bps); bps > 0 && over > 0 {
			if !wait(over, l.done) {
				return false
			}
		}
	}
	return true
}

// write delivers segments when due, coalescing those already due into one
// write; it returns at the sender's end of stream or a failure.
func (l *lane) write() error {
	out := make([]byte, 0, 64<<10)
	var held *segment
	for {
		var s segment
		if held != nil {
			s, held = *held, nil
		} else {
			var ok bool
			if s, ok = <-l.q; !ok {
				return nil
			}
		}
		if !wait(time.Until(s.arrive), l.done) {
			return nil
		}
		if s.eof {
			return l.closeWrite()
		}
		out = append(out[:0], s.b...)
	gather:
		for len(out) < cap(out)-segSize {
			select {
			case next, ok := <-l.q:
				if !ok {
					break gather
				}
				if next.eof || next.arrive.After(time.Now()) {
					held = &next
					break gather
				}
				out = append(out, next.b...)
			default:
				break gather
			}
		}
		if l.silent.Load() {
			continue
		}
		n, err := l.dst.Write(out)
		if !l.countOnRead {
			l.client.Add(int64(n))
			l.total.Add(int64(n))
		}
		if err != nil {
			return err
		}
	}
}

func (l *lane) closeWrite() error {
	if l.silent.Load() {
		return nil
	}
	if cw, ok := l.dst.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return l.dst.Close()
}

// wait waits d, or less if done closes first; false if done closed.
func wait(d time.Duration, done <-chan struct{}) bool {
	if d <= 0 {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}
