package uplink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// slowLink fakes Kinesis behind a link: a call takes rtt plus its request
// bytes at up bytes/s, one at a time (the bytes of one connection queue
// behind each other). While down, calls fail as refused or hang until their
// context ends (a black hole).
type slowLink struct {
	rtt  time.Duration
	up   float64 // bytes/s
	mu   sync.Mutex
	down string // "", "refused" or "hole"
	api  *timedAPI
}

func newSlowLink(rtt time.Duration, up float64) *slowLink {
	return &slowLink{rtt: rtt, up: up, api: newTimedAPI()}
}

func (l *slowLink) set(down string) { l.mu.Lock(); l.down = down; l.mu.Unlock() }

func (l *slowLink) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	l.mu.Lock()
	down := l.down
	l.mu.Unlock()
	var recs []Record
	var data []string
	for _, e := range in.Records {
		recs = append(recs, Record{Data: e.Data})
		data = append(data, string(e.Data))
	}
	d := l.rtt + time.Duration(float64(requestBytes("fixes", "truck-7", recs))/l.up*float64(time.Second))
	start := time.Since(l.api.start)
	out, err := okReply(in), error(nil)
	switch down {
	case "refused":
		out, err = nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case "hole":
		// Nothing answers: the call ends when its context does, or when
		// the client's HTTP/2 ping notices the silence.
		select {
		case <-ctx.Done():
			out, err = nil, fmt.Errorf("send request: %w", ctx.Err())
		case <-time.After(pingAfter + pingTimeout):
			out, err = nil, errors.New("http2: client connection lost")
		}
	default:
		select {
		case <-time.After(d):
		case <-ctx.Done():
			out, err = nil, ctx.Err()
		}
	}
	l.api.mu.Lock()
	l.api.calls = append(l.api.calls, timedCall{at: start, data: data, ok: err == nil})
	l.api.mu.Unlock()
	return out, err
}

// TestProbesWhileDown: while the link is down and a fix arrives every
// second, a probe (the newest fix alone) goes at most once a second, and
// at most every 5 s after five minutes down; a probe that hangs is given
// up; the link's return is noticed within about a second.
func TestProbesWhileDown(t *testing.T) {
	for _, kind := range []string{"refused", "hole"} {
		t.Run(kind, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				link := newSlowLink(50*time.Millisecond, 1e6)
				q := newMemQueue()
				u := New(testConfig(), link, q)
				stop := runUplink(t, u)
				defer stop()
				q.add("warmup")
				time.Sleep(time.Second)
				link.set(kind)
				const downFor = 8 * time.Minute
				start := time.Since(link.api.start)
				for i := range int(downFor / time.Second) {
					q.add(fmt.Sprint(i))
					time.Sleep(time.Second)
				}
				back := time.Since(link.api.start)
				link.set("")
				for i := range int((probeEveryLong + 3*time.Second) / time.Second) {
					q.add(fmt.Sprint("after", i))
					time.Sleep(time.Second)
				}
				synctest.Wait()

				calls := link.api.snapshot()
				var early, late int
				var prev time.Duration
				for _, c := range calls {
					if c.at < start+10*time.Millisecond || c.at >= back {
						continue
					}
					if len(c.data) != 1 {
						t.Fatalf("probe at %v carries %d records, want 1", c.at, len(c.data))
					}
					gap := c.at - prev
					prev = c.at
					if c.at-start < probeSlowAfter {
						early++
						if gap < probeEvery-time.Millisecond {
							t.Errorf("probes %v apart at %v, want at least %v", gap, c.at-start, probeEvery)
						}
					} else if c.at-start > probeSlowAfter+probeEveryLong+pingAfter+pingTimeout {
						// (The first call into a black hole hangs until the
						// client's ping gives up: the streak starts then.)
						late++
						if gap < probeEveryLong-time.Millisecond {
							t.Errorf("probes %v apart at %v down, want at least %v", gap, c.at-start, probeEveryLong)
						}
					}
				}
				// Refused: one a second. A black hole: each probe is given
				// up after its timeout (1 s here), then the next goes.
				if lo := int(probeSlowAfter/time.Second) / 3; early < lo {
					t.Errorf("%d probes in the first 5 min down, want at least %d", early, lo)
				}
				if late < 20 {
					t.Errorf("%d probes in the 3 min after, want about one every 5 s", late)
				}
				var noticed time.Duration = -1
				for _, c := range calls {
					if c.ok && c.at >= back {
						noticed = c.at - back
						break
					}
				}
				if noticed < 0 || noticed > probeEveryLong+probeTimeoutMin+time.Second {
					t.Errorf("link back noticed after %v", noticed)
				}
				t.Logf("%s: %d probes in 5 min, %d in the 3 min after; noticed %v after the return", kind, early, late, noticed)
			})
		})
	}
}

// TestNoticedWithinASecond: in the first minutes of an outage, a link back
// is noticed within about a second of its return, refused or black hole.
func TestNoticedWithinASecond(t *testing.T) {
	for _, kind := range []string{"refused", "hole"} {
		t.Run(kind, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				link := newSlowLink(50*time.Millisecond, 1e6)
				q := newMemQueue()
				u := New(testConfig(), link, q)
				stop := runUplink(t, u)
				defer stop()
				q.add("warmup")
				time.Sleep(time.Second)
				var worst time.Duration
				for round := range 10 {
					link.set(kind)
					// Outages of a minute plus a varying part, so the
					// return falls anywhere between probes.
					for range 60 {
						q.add("down")
						time.Sleep(time.Second)
					}
					time.Sleep(time.Duration(round) * 97 * time.Millisecond)
					back := time.Since(link.api.start)
					link.set("")
					for range 3 {
						q.add("up")
						time.Sleep(time.Second)
					}
					synctest.Wait()
					for _, c := range link.api.snapshot() {
						if c.ok && c.at >= back {
							worst = max(worst, c.at-back)
							break
						}
					}
				}
				// Refused: the next fix's probe (<= 1 s). A black hole: the
				// probe in flight is given up (1 s), and the next goes at
				// once (a fix arrived meanwhile).
				limit := probeEvery + 100*time.Millisecond
				if kind == "hole" {
					limit = probeTimeoutMin + 200*time.Millisecond
				}
				if worst > limit {
					t.Errorf("link back noticed after %v at worst, want within %v", worst, limit)
				}
				t.Logf("%s: noticed within %v of the return", kind, worst)
			})
		})
	}
}

// TestBackfillCallsSizedToLink: on a slow link (300 ms, 256 kbit/s up) the
// backlog goes in calls that upload in a fraction of a second, so a live
// fix never waits behind a 5 s call.
func TestBackfillCallsSizedToLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		link := newSlowLink(300*time.Millisecond, 32000)
		q := newFIFOQueue()
		for i := range 5000 {
			q.addOld(fixRecord(i))
		}
		cfg := testConfig()
		cfg.BackfillDelay = -1
		u := New(cfg, link, q)
		stop := runUplink(t, u)
		defer stop()
		for i := range 60 {
			q.add(true, fixRecord(5000+i))
			time.Sleep(time.Second)
		}
		time.Sleep(3 * time.Second) // the last fix's call
		synctest.Wait()
		lat, unacked := q.latencies()
		if unacked > 0 {
			t.Errorf("%d live fixes not acked", unacked)
		}
		worst := percentile(lat, 100)
		calls := link.api.snapshot()
		biggest := 0
		for _, c := range calls[min(len(calls), 5):] { // after the first measurements
			biggest = max(biggest, len(c.data))
		}
		// 250 ms at 32 KB/s is ~8 KB: ~25 fixes of ~290 B on the wire.
		if biggest > 40 {
			t.Errorf("backfill calls of up to %d records on a 256 kbit/s link, want ~25", biggest)
		}
		if worst > 2*time.Second {
			t.Errorf("live fix latency up to %v while the backlog drains, want <= 2 s", worst)
		}
		sent := 0
		for _, c := range calls {
			sent += len(c.data)
		}
		if sent < 1500 {
			t.Errorf("%d records sent in a minute, want the link used (~40/s)", sent)
		}
		t.Logf("%d calls, %d records, the largest after the first five: %d; live latency p50 %v, max %v",
			len(calls), sent, biggest, percentile(lat, 50), worst)
	})
}
