package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithy "github.com/aws/smithy-go"

	"github.com/fleetedge/gps-agent/uplink"
)

// healthQueue is an in-memory uplink.Queue; ackHang, when set, makes Ack block for ever (a wedged buffer).
type healthQueue struct {
	mu      sync.Mutex
	next    uint64
	pending []uplink.Record // ascending seq
	notify  chan struct{}
	ackHang chan struct{}
}

func newHealthQueue() *healthQueue { return &healthQueue{next: 1, notify: make(chan struct{}, 1)} }

func (q *healthQueue) add(n int) {
	q.mu.Lock()
	for range n {
		q.pending = append(q.pending, uplink.Record{Seq: q.next, Data: fmt.Appendf(nil, `{"seq":%d}`, q.next), Queued: time.Now()})
		q.next++
	}
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *healthQueue) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

func (q *healthQueue) Oldest(after uint64, max int) ([]uplink.Record, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []uplink.Record
	for _, r := range q.pending {
		if r.Seq > after && len(out) < max {
			out = append(out, r)
		}
	}
	return out, nil
}

func (q *healthQueue) Newest(max int) ([]uplink.Record, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []uplink.Record
	for i := len(q.pending) - 1; i >= 0 && len(out) < max; i-- {
		out = append(out, q.pending[i])
	}
	return out, nil
}

func (q *healthQueue) Ack(seqs ...uint64) error {
	if q.ackHang != nil {
		<-q.ackHang
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = slices.DeleteFunc(q.pending, func(r uplink.Record) bool { return slices.Contains(seqs, r.Seq) })
	return nil
}

func (q *healthQueue) Notify() <-chan struct{} { return q.notify }

// healthAPI fakes PutRecords with a function.
type healthAPI func(ctx context.Context, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error)

func (f healthAPI) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	return f(ctx, in)
}

func storeAll(_ context.Context, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
	out := &kinesis.PutRecordsOutput{}
	for i := range in.Records {
		out.Records = append(out.Records, types.PutRecordsResultEntry{SequenceNumber: aws.String(fmt.Sprint(i + 1)), ShardId: aws.String("shardId-0")})
	}
	return out, nil
}

func failAll(err error) healthAPI {
	return func(context.Context, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) { return nil, err }
}

// TestUplinkHealthAtConfigExtremes runs the uplink with every duration key at the ends Validate accepts, on
// synctest's clock, for hours of virtual time, judging its health as the watchdog does every few seconds. A
// waiting uplink (a 5-minute linger, an hour's back-off, an hour's backfill delay, a backlog paced to a trickle)
// is never taken for a stuck one; before, anything past 2 minutes without a call ending was.
func TestUplinkHealthAtConfigExtremes(t *testing.T) {
	flaky := func() healthAPI {
		var n int
		var mu sync.Mutex
		return func(ctx context.Context, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			mu.Lock()
			n++
			fail := n%3 != 0
			mu.Unlock()
			if fail {
				return nil, errors.New("dial tcp: lookup kinesis.eu-west-1.amazonaws.com: no such host")
			}
			return storeAll(ctx, in)
		}
	}
	tests := []struct {
		name      string
		set       func(c *UplinkConfig)
		api       healthAPI
		backlog   int           // records queued before Run
		liveEvery time.Duration // a new record this often (0: none)
		watch     time.Duration // virtual time watched
		drained   bool          // everything is sent by the end
	}{
		{name: "linger 5m", set: func(c *UplinkConfig) { c.Linger.Duration = 5 * time.Minute },
			api: storeAll, liveEvery: 10 * time.Second, watch: time.Hour},
		{name: "every key at its minimum", set: func(c *UplinkConfig) {
			c.Linger.Duration, c.MaxBackoff.Duration, c.BackfillDelay.Duration, c.StopTimeout.Duration = 0, time.Second, 0, 0
		}, api: flaky(), backlog: 3000, liveEvery: time.Second, watch: 30 * time.Minute},
		{name: "max_backoff 1h, link down", set: func(c *UplinkConfig) { c.MaxBackoff.Duration = time.Hour },
			api: failAll(errors.New("dial tcp 52.94.0.1:443: connect: network is unreachable")), liveEvery: time.Minute, watch: 6 * time.Hour},
		{name: "max_backoff 1h, access denied", set: func(c *UplinkConfig) { c.MaxBackoff.Duration = time.Hour },
			api:     failAll(&smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}),
			backlog: 10, watch: 4 * time.Hour},
		{name: "backfill_delay 1h", set: func(c *UplinkConfig) { c.BackfillDelay.Duration = time.Hour },
			api: storeAll, backlog: 5000, watch: 2 * time.Hour, drained: true},
		{name: "backfill paced to a trickle", set: func(c *UplinkConfig) { c.BackfillShare = 0.001 },
			api: storeAll, backlog: 2000, watch: 2 * time.Hour},
		{name: "every key at its maximum, flaky link", set: func(c *UplinkConfig) {
			c.Linger.Duration, c.MaxBackoff.Duration, c.BackfillDelay.Duration = 5*time.Minute, time.Hour, time.Hour
			c.StopTimeout.Duration, c.BackfillShare = time.Minute, 1
		}, api: flaky(), backlog: 1000, liveEvery: time.Second, watch: 8 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := DefaultConfig()
				cfg.TruckID, cfg.Receiver.Device, cfg.Buffer.Dir = "truck-7", "/dev/ttyUSB0", t.TempDir()
				cfg.Kinesis.Stream, cfg.Kinesis.Region = "fixes", "eu-west-1"
				tt.set(&cfg.Uplink)
				if errs := cfg.Validate(); len(errs) > 0 {
					t.Fatalf("Validate rejects the case: %v", errs)
				}
				q := newHealthQueue()
				q.add(tt.backlog)
				u := uplink.New(uplinkConfig(cfg, slog.New(slog.DiscardHandler)), tt.api, q)
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error)
				go func() { done <- u.Run(ctx) }()

				const step = 5 * time.Second // the watchdog checks at half of WatchdogSec=30s, or more often
				start := time.Now()
				for time.Since(start) < tt.watch {
					if tt.liveEvery > 0 && time.Since(start)%tt.liveEvery < step {
						q.add(1)
					}
					time.Sleep(step)
					synctest.Wait()
					if s := uplinkStuck(u.Stats(), q.count(), time.Now()); s != "" {
						t.Errorf("after %v: %s (stats %+v)", time.Since(start), s, u.Stats())
						break
					}
				}
				if tt.drained && q.count() > 0 {
					t.Errorf("%d records still pending after %v", q.count(), tt.watch)
				}
				if s := u.Stats(); s.Calls == 0 {
					t.Errorf("no call in %v", tt.watch)
				}
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			})
		})
	}
}

// TestUplinkHealthCatchesAStuckLoop: a call that never returns (an API that ignores its context) or an Ack that
// never returns (a wedged buffer) is reported once the loop is past its next attempt, the longest call and the
// margin; not before.
func TestUplinkHealthCatchesAStuckLoop(t *testing.T) {
	tests := []struct {
		name  string
		hangs func(release chan struct{}, q *healthQueue) healthAPI
	}{
		{name: "call never returns", hangs: func(release chan struct{}, _ *healthQueue) healthAPI {
			return func(context.Context, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
				<-release
				return nil, errors.New("released")
			}
		}},
		{name: "ack never returns", hangs: func(release chan struct{}, q *healthQueue) healthAPI {
			q.ackHang = release
			return storeAll
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newHealthQueue()
				release := make(chan struct{})
				cfg := DefaultConfig()
				cfg.TruckID, cfg.Kinesis.Stream = "truck-7", "fixes"
				u := uplink.New(uplinkConfig(cfg, slog.New(slog.DiscardHandler)), tt.hangs(release, q), q)
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error)
				go func() { done <- u.Run(ctx) }()

				start := time.Now()
				q.add(1)
				synctest.Wait() // the loop is in the call (or the Ack) now, for good
				const step = 5 * time.Second
				var stuckAt time.Duration
				for stuckAt == 0 && time.Since(start) < time.Hour {
					time.Sleep(step)
					synctest.Wait()
					if s := uplinkStuck(u.Stats(), q.count(), time.Now()); s != "" {
						stuckAt = time.Since(start)
						t.Logf("reported after %v: %s", stuckAt, s)
					}
				}
				if lo, hi := uplink.MaxCallTime+uplinkLateBy, uplink.MaxCallTime+uplinkLateBy+2*step; stuckAt < lo || stuckAt > hi {
					t.Errorf("stuck reported after %v, want between %v and %v", stuckAt, lo, hi)
				}
				close(release)
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run: %v", err)
				}
			})
		})
	}
}

// The watchdog ignores an uplink with nothing to send, and one waiting for new records.
func TestUplinkHealthIdle(t *testing.T) {
	long := time.Now().Add(-24 * time.Hour)
	if s := uplinkStuck(uplink.Stats{NextAttempt: long}, 0, time.Now()); s != "" {
		t.Errorf("nothing pending: %q", s)
	}
	if s := uplinkStuck(uplink.Stats{}, 5, time.Now()); s != "" {
		t.Errorf("waiting for records: %q", s)
	}
	if s := uplinkStuck(uplink.Stats{NextAttempt: long}, 5, time.Now()); s == "" {
		t.Errorf("a day past its next attempt with fixes pending: not stuck")
	}
}
