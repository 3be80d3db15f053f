package uplink

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
)

// timedCall is one call seen by a clock-aware fake.
type timedCall struct {
	at   time.Duration // since the fake was made (fake time in a bubble)
	data []string
	ok   bool // the call returned no error
}

// timedAPI records when each call happened and answers with reply (success
// for every record if nil).
type timedAPI struct {
	start time.Time
	mu    sync.Mutex
	calls []timedCall
	reply func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error)
}

func newTimedAPI() *timedAPI { return &timedAPI{start: time.Now()} }

func (a *timedAPI) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	var data []string
	for _, e := range in.Records {
		data = append(data, string(e.Data))
	}
	a.mu.Lock()
	reply := a.reply
	a.mu.Unlock()
	out, err := okReply(in), error(nil)
	if reply != nil {
		out, err = reply(in)
	}
	a.mu.Lock()
	a.calls = append(a.calls, timedCall{at: time.Since(a.start), data: data, ok: err == nil})
	a.mu.Unlock()
	return out, err
}

func (a *timedAPI) snapshot() []timedCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]timedCall(nil), a.calls...)
}

// sentBy counts the records sent at or before d.
func sentBy(calls []timedCall, d time.Duration) int {
	n := 0
	for _, c := range calls {
		if c.at <= d {
			n += len(c.data)
		}
	}
	return n
}

// whenSent returns when a record with data s was first sent in a call that
// returned no error, or -1.
func whenSent(calls []timedCall, s string) time.Duration {
	for _, c := range calls {
		if !c.ok {
			continue
		}
		for _, d := range c.data {
			if d == s {
				return c.at
			}
		}
	}
	return -1
}

func TestBackfillPaced(t *testing.T) {
	tests := []struct {
		name  string
		share float64
		rate  int // records/s the backlog may use
	}{
		{name: "default half a shard", share: 0, rate: 500},
		{name: "a tenth of a shard", share: 0.1, rate: 100},
		{name: "a whole shard", share: 1, rate: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				backlog := 15 * tt.rate
				q := newMemQueue()
				for i := range backlog {
					q.addOld(fmt.Sprint(i))
				}
				api := newTimedAPI()
				cfg := testConfig()
				cfg.BackfillShare = tt.share
				cfg.BackfillDelay = -1
				u := New(cfg, api, q)
				stop := runUplink(t, u)
				// A live fix in the middle of the drain goes out at once.
				time.Sleep(1300 * time.Millisecond)
				q.add("live")
				synctest.Wait()
				time.Sleep(time.Minute)
				synctest.Wait()
				stop()

				calls := api.snapshot()
				if at := whenSent(calls, "live"); at != 1300*time.Millisecond {
					t.Errorf("live record sent at %v, want at once (1.3 s)", at)
				}
				// Slow start: from 1/16 of the rate, doubling each
				// second, then the rate; live records take no tokens.
				if got, hi := sentBy(calls, time.Second), tt.rate/16*3+3; got > hi {
					t.Errorf("%d records sent by 1 s, want a slow start (<= %d)", got, hi)
				}
				if got := sentBy(calls, 15*time.Second) - sentBy(calls, 10*time.Second); got < 5*tt.rate-2 || got > 5*tt.rate+2 {
					t.Errorf("%d records sent from 10 s to 15 s, want %d (the share)", got, 5*tt.rate)
				}
				if q.pendingCount() != 0 {
					t.Errorf("pending = %d after a minute", q.pendingCount())
				}
				// Backfill goes in full calls, not a trickle of small ones:
				// one per full bucket, plus the live record's call, the
				// partial calls around it
				// and the slow start's calls.
				if want := backlog/min(int(float64(tt.rate)*paceBurst), MaxRecordsPerCall) + 15; len(calls) > want {
					t.Errorf("%d calls, want at most %d", len(calls), want)
				}
				if s := u.Stats(); s.BackfillRate != float64(tt.rate) {
					t.Errorf("stats backfill rate = %v, want %d", s.BackfillRate, tt.rate)
				}
			})
		})
	}
}

// shardFake fakes a shard that accepts at most perSecond records a second
// (one second of burst) and fails the rest with
// ProvisionedThroughputExceededException.
type shardFake struct {
	mu        sync.Mutex
	perSecond float64
	tokens    float64
	last      time.Time
	throttled int
}

func (s *shardFake) reply(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.last.IsZero() {
		s.tokens, s.last = s.perSecond, now
	}
	s.tokens = min(s.perSecond, s.tokens+now.Sub(s.last).Seconds()*s.perSecond)
	s.last = now
	out := okReply(in)
	for i := range out.Records {
		if s.tokens < 1 {
			out.Records[i] = failEntry("ProvisionedThroughputExceededException")
			*out.FailedRecordCount = aws.ToInt32(out.FailedRecordCount) + 1
			s.throttled++
			continue
		}
		s.tokens--
	}
	return out, nil
}

func (s *shardFake) set(perSecond float64) {
	s.mu.Lock()
	s.perSecond = perSecond
	s.mu.Unlock()
}

func TestBackfillSlowsWhenThrottledAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		for i := range 20000 {
			q.addOld(fmt.Sprint(i))
		}
		// Other trucks use the shard: only 100 records/s are left for us.
		shard := &shardFake{perSecond: 100}
		api := newTimedAPI()
		api.reply = shard.reply
		cfg := testConfig()
		cfg.BackfillDelay = -1
		u := New(cfg, api, q)
		stop := runUplink(t, u)
		defer stop()

		time.Sleep(20 * time.Second)
		synctest.Wait()
		if r := u.Stats().BackfillRate; r > 250 {
			t.Errorf("backfill rate while throttled = %v records/s, want cut at least once (<= 250)", r)
		}
		shard.mu.Lock()
		thr := shard.throttled
		shard.mu.Unlock()
		// Without slowing down, 500 - 100 = 400 records a second would fail.
		if sent := sentBy(api.snapshot(), 20*time.Second); thr > sent/2 {
			t.Errorf("%d of %d records sent were throttled: the uplink did not slow down", thr, sent)
		}
		// The shard frees up: the pace climbs back to the share, gradually.
		shard.set(100000)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if r := u.Stats().BackfillRate; r >= 500 {
			t.Errorf("backfill rate 2 s after throttling stopped = %v, want still recovering", r)
		}
		// After 5 s without a throttle the climb turns exponential: the
		// share is back within 20 s, not a crawl of 2.5 records/s a
		// second while the shard idles (80 s before).
		time.Sleep(18 * time.Second)
		synctest.Wait()
		if r := u.Stats().BackfillRate; r != 500 {
			t.Errorf("backfill rate 20 s after throttling stopped = %v, want 500", r)
		}
	})
}

// TestWholeCallThrottleIsNoOutage: calls throttled as a whole (HTTP 400,
// as an on-demand stream may answer) got a reply: the link is up, Kinesis
// asks to slow down. They slow the backlog; they are not an outage after
// which the backfill waits its delay again and restarts from slow start.
func TestWholeCallThrottleIsNoOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		for i := range 20000 {
			q.addOld(fmt.Sprint(i))
		}
		var throttling atomic.Bool
		api := newTimedAPI()
		api.reply = func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			if throttling.Load() {
				return nil, &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "Rate exceeded"}
			}
			return okReply(in), nil
		}
		cfg := testConfig()
		cfg.BackfillDelay = 10 * time.Second
		u := New(cfg, api, q)
		u.randN = func(max time.Duration) time.Duration { return max } // the whole delay, every time
		stop := runUplink(t, u)

		time.Sleep(15 * time.Second) // the backfill runs from 10 s
		synctest.Wait()
		throttling.Store(true)
		time.Sleep(5 * time.Second)
		throttling.Store(false)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		stop()

		calls := api.snapshot()
		if got := sentBy(calls, 25*time.Second) - sentBy(calls, 21*time.Second); got == 0 {
			t.Errorf("no backlog sent 1-5 s after whole-call throttling ended: taken for an outage (backfill at %v)", u.Stats().BackfillAt)
		}
	})
}

func TestBackfillDelay(t *testing.T) {
	const delay = 17 * time.Second
	tests := []struct {
		name string
		// queued before Run; added while the link is down (failing calls).
		before, during int
		failures       int
		wantDelay      bool
	}{
		{name: "start-up with a backlog", before: 100, wantDelay: true},
		{name: "start-up without backlog"},
		{name: "outage", during: 100, failures: 5, wantDelay: true},
		{name: "one lost call is no outage", during: 100, failures: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newMemQueue()
				for i := range tt.before {
					q.addOld(fmt.Sprint("b", i))
				}
				api := newTimedAPI()
				var mu sync.Mutex
				fail := 0
				api.reply = func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
					mu.Lock()
					defer mu.Unlock()
					if fail > 0 {
						fail--
						return nil, fmt.Errorf("dial tcp: connect: network is unreachable")
					}
					return okReply(in), nil
				}
				cfg := testConfig()
				cfg.MaxBackoff = time.Second
				u := New(cfg, api, q)
				var drew []time.Duration
				u.randN = func(max time.Duration) time.Duration { drew = append(drew, max); return delay }
				stop := runUplink(t, u)
				defer stop()
				synctest.Wait()
				oldest, newest := "b0", "live"
				if tt.before == 0 {
					oldest = "live"
				}
				if tt.during > 0 {
					mu.Lock()
					fail = tt.failures
					mu.Unlock()
					// Recorded during the outage, longer ago than the live
					// window, and one fix just now.
					for i := range tt.during {
						q.addAt(time.Now().Add(-time.Minute), fmt.Sprint("d", i))
					}
					oldest = "d0"
				}
				q.add("live")
				time.Sleep(time.Minute)
				synctest.Wait()

				calls := api.snapshot()
				// The first call that succeeds after the failures carries
				// the newest record, and only live records.
				var first *timedCall
				failed := 0
				for i, c := range calls {
					if !c.ok {
						failed++
						continue
					}
					if failed == tt.failures && slices.Contains(c.data, newest) {
						first = &calls[i]
						break
					}
				}
				if first == nil {
					t.Fatalf("no successful call with the newest record after %d failures: %v", tt.failures, calls)
				}
				if tt.wantDelay && !slices.Equal(first.data, []string{newest}) {
					t.Errorf("first successful call carries %q, want the live record only", first.data)
				}
				got := whenSent(calls, oldest)
				if tt.wantDelay {
					if got < first.at+delay || len(drew) != 1 || drew[0] != DefaultBackfillDelay {
						t.Errorf("backlog sent at %v (draws %v), want %v after %v, drawn in [0, %v]",
							got, drew, delay, first.at, DefaultBackfillDelay)
					}
				} else if got < 0 || got > first.at+2*time.Second || len(drew) != 0 {
					t.Errorf("backlog sent at %v (draws %v), want without delay after %v", got, drew, first.at)
				}
				if q.pendingCount() != 0 {
					t.Errorf("pending = %d", q.pendingCount())
				}
			})
		})
	}
}

func TestBackfillDelayIsRandom(t *testing.T) {
	u := New(testConfig(), &recorder{}, newMemQueue())
	seen := map[time.Duration]bool{}
	for range 200 {
		d := u.randN(DefaultBackfillDelay)
		if d < 0 || d > DefaultBackfillDelay {
			t.Fatalf("delay %v outside [0, %v]", d, DefaultBackfillDelay)
		}
		seen[d/time.Second] = true
	}
	// 200 draws over 31 whole seconds: a fleet spreads out.
	if len(seen) < 20 {
		t.Errorf("delays fall in only %d distinct seconds of 30", len(seen))
	}
	if d := u.randN(0); d != 0 {
		t.Errorf("randN(0) = %v", d)
	}
}

func TestStopLetsCallInFlightFinish(t *testing.T) {
	tests := []struct {
		name        string
		stopTimeout time.Duration
		callTakes   time.Duration
		wantReturn  time.Duration // after cancel
		wantAcked   bool
	}{
		{name: "finishes within the stop timeout", callTakes: 2 * time.Second, wantReturn: 1500 * time.Millisecond, wantAcked: true},
		{name: "abandoned at the stop timeout", callTakes: time.Minute, wantReturn: DefaultStopTimeout},
		{name: "no stop timeout", stopTimeout: -1, callTakes: 2 * time.Second, wantReturn: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newMemQueue()
				calls := 0
				var callErr error
				api := putFunc(func(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
					calls++
					select {
					case <-time.After(tt.callTakes):
						return okReply(in), nil
					case <-ctx.Done():
						callErr = ctx.Err()
						return nil, ctx.Err()
					}
				})
				cfg := testConfig()
				cfg.StopTimeout = tt.stopTimeout
				u := New(cfg, api, q)
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { done <- u.Run(ctx) }()
				q.add("a")
				time.Sleep(500 * time.Millisecond) // the call is in flight
				cancel()
				q.add("b") // must not start a new call
				start := time.Now()
				if err := <-done; err != nil {
					t.Errorf("Run = %v", err)
				}
				if d := time.Since(start); d != tt.wantReturn {
					t.Errorf("Run returned %v after cancel, want %v", d, tt.wantReturn)
				}
				if calls != 1 {
					t.Errorf("calls = %d, want 1 (nothing new after stop)", calls)
				}
				acked := q.acked[1] == 1
				if acked != tt.wantAcked {
					t.Errorf("record acked = %v, want %v (call error %v)", acked, tt.wantAcked, callErr)
				}
				if s := u.Stats(); len(s.CallErrors) != 0 {
					t.Errorf("stop counted as a call error: %v", s.CallErrors)
				}
			})
		})
	}
}
