package uplink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithy "github.com/aws/smithy-go"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig() Config {
	return Config{Stream: "fixes", PartitionKey: "truck-7", MaxBackoff: 30 * time.Second, Log: quietLog()}
}

// recorder is a fake API that records every call's data and answers with
// reply, or with success for every record if reply is nil.
type recorder struct {
	mu    sync.Mutex
	calls [][]string
	keys  []string
	reply func(call int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error)
}

func (r *recorder) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	r.mu.Lock()
	var data []string
	for _, e := range in.Records {
		data = append(data, string(e.Data))
		r.keys = append(r.keys, aws.ToString(e.PartitionKey))
	}
	r.calls = append(r.calls, data)
	n := len(r.calls)
	r.mu.Unlock()
	if r.reply != nil {
		return r.reply(n, in)
	}
	return okReply(in), nil
}

func (r *recorder) snapshot() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

func okReply(in *kinesis.PutRecordsInput) *kinesis.PutRecordsOutput {
	out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0)}
	for i := range in.Records {
		out.Records = append(out.Records, types.PutRecordsResultEntry{
			SequenceNumber: aws.String(fmt.Sprintf("4960%040d", i)), ShardId: aws.String("shardId-000000000000")})
	}
	return out
}

func failEntry(code string) types.PutRecordsResultEntry {
	return types.PutRecordsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String(code + " message")}
}

// runUplink starts Run in the synctest bubble and returns a stop function
// that cancels it and checks that it returns nil.
func runUplink(t *testing.T, u *Uplink) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestSendsEachRecordAndAcksIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		api := &recorder{}
		u := New(testConfig(), api, q)
		stop := runUplink(t, u)
		defer stop()

		q.add("a")
		synctest.Wait()
		q.add("b", "c")
		synctest.Wait()

		want := [][]string{{"a"}, {"b", "c"}}
		if got := api.snapshot(); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("calls = %q, want %q", got, want)
		}
		if n := q.pendingCount(); n != 0 {
			t.Errorf("pending = %d, want 0", n)
		}
		for _, k := range api.keys {
			if k != "truck-7" {
				t.Errorf("partition key = %q, want truck-7", k)
			}
		}
		s := u.Stats()
		if s.RecordsAcked != 3 || s.RecordsSent != 3 || s.Calls != 2 || s.LastSuccess.IsZero() {
			t.Errorf("stats = %+v", s)
		}
		if s.BytesSent == 0 || s.BytesReceived == 0 {
			t.Errorf("byte counters not counting: %+v", s)
		}
	})
}

func TestPartialFailureResendsOnlyFailed(t *testing.T) {
	tests := []struct {
		name    string
		code    string
		errCode *string // ErrorCode on success entries: nil (AWS) or ""
	}{
		{name: "throttled", code: "ProvisionedThroughputExceededException"},
		{name: "internal failure", code: "InternalFailure"},
		{name: "empty error code on success", code: "InternalFailure", errCode: aws.String("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newMemQueue()
				q.add("a", "b", "c", "d", "e")
				api := &recorder{reply: func(call int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
					out := okReply(in)
					for i := range out.Records {
						out.Records[i].ErrorCode = tt.errCode
					}
					if call == 1 {
						out.Records[1] = failEntry(tt.code)
						out.Records[3] = failEntry(tt.code)
						out.FailedRecordCount = aws.Int32(2)
					}
					return out, nil
				}}
				u := New(testConfig(), api, q)
				stop := runUplink(t, u)
				synctest.Wait()
				time.Sleep(time.Minute) // fake time: past any backoff
				synctest.Wait()
				stop()

				want := [][]string{{"a", "b", "c", "d", "e"}, {"b", "d"}}
				if got := api.snapshot(); !slices.EqualFunc(got, want, slices.Equal) {
					t.Errorf("calls = %q, want %q", got, want)
				}
				for seq, n := range q.acked {
					if n != 1 {
						t.Errorf("seq %d acked %d times", seq, n)
					}
				}
				if len(q.acked) != 5 {
					t.Errorf("acked %d records, want 5", len(q.acked))
				}
				s := u.Stats()
				if s.FailedRecords[tt.code] != 2 || s.Retries != 1 {
					t.Errorf("stats = %+v", s)
				}
			})
		})
	}
}

func TestPermanentErrorBacksOffWithoutBusyLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		q.add("a")
		notFound := &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "Stream fixes under account 1 not found."}
		var logs strings.Builder
		var logMu sync.Mutex
		cfg := testConfig()
		cfg.Log = slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
		api := &recorder{reply: func(int, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			return nil, fmt.Errorf("operation error Kinesis: PutRecords: %w", notFound)
		}}
		u := New(cfg, api, q)
		stop := runUplink(t, u)
		// Calls at 0, 30, 60, 90 s.
		time.Sleep(100 * time.Second)
		synctest.Wait()
		stop()

		if n := len(api.snapshot()); n != 4 {
			t.Errorf("calls in 100 s = %d, want 4 (one per MaxBackoff)", n)
		}
		if q.pendingCount() != 1 {
			t.Errorf("record was dropped")
		}
		logMu.Lock()
		defer logMu.Unlock()
		if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
			t.Errorf("logged %d errors, want 1 (once per change):\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "not found") {
			t.Errorf("log lacks the AWS message:\n%s", logs.String())
		}
		s := u.Stats()
		if s.CallErrors["ResourceNotFoundException"] != 4 || !strings.Contains(s.LastError, "not found") {
			t.Errorf("stats = %+v", s)
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRetryableErrorBacksOffExponentially(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		q.add("a")
		api := &recorder{reply: func(int, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			return nil, &smithy.GenericAPIError{Code: "InternalFailure", Message: "We encountered an internal error"}
		}}
		u := New(testConfig(), api, q)
		stop := runUplink(t, u)
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		stop()

		// Capped at 30 s with full jitter: on average one call per 15 s once
		// at the cap, 40 in 10 min; without backoff it would be unbounded.
		n := len(api.snapshot())
		if n < 10 || n > 120 {
			t.Errorf("calls in 10 min = %d, want 10..120", n)
		}
	})
}

// TestThrottledLiveRetriedWithinASecond: a throttled call is retried within
// throttleRetryMax, never at once (no busy loop), while throttling lasts.
func TestThrottledLiveRetriedWithinASecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		var throttling atomic.Bool
		throttling.Store(true)
		api := newTimedAPI()
		api.reply = func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			if throttling.Load() {
				return nil, &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "Rate exceeded"}
			}
			return okReply(in), nil
		}
		u := New(testConfig(), api, q)
		stop := runUplink(t, u)
		defer stop()
		q.add("a")
		time.Sleep(time.Minute)
		throttling.Store(false)
		time.Sleep(time.Second)
		synctest.Wait()

		calls := api.snapshot()
		if n := len(calls); n < 60 || n > 125 {
			t.Errorf("%d calls in a minute of throttling, want one every %v..%v", n, throttleRetryMax/2, throttleRetryMax)
		}
		for i := 1; i < len(calls); i++ {
			if gap := calls[i].at - calls[i-1].at; gap > throttleRetryMax || gap < baseBackoff/2 {
				t.Fatalf("calls %v apart while throttled, want %v..%v", gap, baseBackoff/2, throttleRetryMax)
			}
		}
		if q.pendingCount() != 0 || !calls[len(calls)-1].ok {
			t.Errorf("record not stored within %v of the throttling's end", throttleRetryMax)
		}
	})
}

func TestBackoffHonoursCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		q.add("a")
		api := &recorder{reply: func(int, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"}
		}}
		u := New(testConfig(), api, q)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- u.Run(ctx) }()
		synctest.Wait() // in the 30 s backoff
		start := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Run returned %v after cancel, want at once", d)
		}
	})
}

func TestCallCancelledMidFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		q.add("a")
		var calls int
		blocking := putFunc(func(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
			calls++
			<-ctx.Done()
			return nil, ctx.Err()
		})
		u := New(testConfig(), blocking, q)
		stop := runUplink(t, u)
		synctest.Wait()
		stop()
		if calls != 1 || q.pendingCount() != 1 {
			t.Errorf("calls = %d, pending = %d; want 1, 1", calls, q.pendingCount())
		}
		if s := u.Stats(); len(s.CallErrors) != 0 || s.LastError != "" {
			t.Errorf("cancellation counted as a failure: %+v", s)
		}
	})
}

func TestAckFailureDoesNotResend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		q.ackErr = errors.New("disk full")
		api := &recorder{}
		u := New(testConfig(), api, q)
		stop := runUplink(t, u)
		q.add("a")
		synctest.Wait()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		q.mu.Lock()
		q.ackErr = nil
		q.mu.Unlock()
		time.Sleep(time.Minute)
		synctest.Wait()
		q.add("b")
		synctest.Wait()
		stop()

		want := [][]string{{"a"}, {"b"}}
		if got := api.snapshot(); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("calls = %q, want %q (a must not be resent)", got, want)
		}
		if q.pendingCount() != 0 {
			t.Errorf("pending = %d, want 0", q.pendingCount())
		}
	})
}

func TestBatchLimits(t *testing.T) {
	big := strings.Repeat("x", MaxRecordBytes-len("truck-7")) // exactly at the limit
	tests := []struct {
		name      string
		records   []string
		wantSizes []int // records per call
		oversize  uint64
	}{
		{name: "500 records per call", records: repeat("r", 501), wantSizes: []int{500, 1}},
		{name: "5 MiB per call", records: repeat(big, 6), wantSizes: []int{5, 1}},
		{name: "oversize record skipped", records: []string{"a", big + "x", "b"}, wantSizes: []int{2}, oversize: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newMemQueue()
				q.add(tt.records...)
				api := &recorder{}
				cfg := testConfig()
				cfg.BackfillDelay = -1
				u := New(cfg, api, q)
				stop := runUplink(t, u)
				time.Sleep(time.Minute) // fake time: past any pacing
				synctest.Wait()
				stop()
				var sizes []int
				for _, c := range api.snapshot() {
					sizes = append(sizes, len(c))
				}
				if !slices.Equal(sizes, tt.wantSizes) {
					t.Errorf("records per call = %v, want %v", sizes, tt.wantSizes)
				}
				if s := u.Stats(); s.Oversize != tt.oversize {
					t.Errorf("oversize = %d, want %d", s.Oversize, tt.oversize)
				}
				if got, want := q.pendingCount(), int(tt.oversize); got != want {
					t.Errorf("pending = %d, want %d", got, want)
				}
			})
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestLiveFirstAfterOutage: while the link is down, calls are probes of the
// newest fix, at most one a second; the link's return is noticed within a
// second; then what was recorded in the live window goes at once, and the
// backlog after it, oldest first.
func TestLiveFirstAfterOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		var mu sync.Mutex
		down := false
		setDown := func(v bool) { mu.Lock(); down = v; mu.Unlock() }
		api := newTimedAPI()
		api.reply = func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			mu.Lock()
			defer mu.Unlock()
			if down {
				return nil, errors.New("dial tcp: connect: network is unreachable")
			}
			return okReply(in), nil
		}
		u := New(testConfig(), api, q) // MaxBackoff 30 s: the probes must not wait for it
		u.randN = func(time.Duration) time.Duration { return 20 * time.Second }
		stop := runUplink(t, u)
		q.add("warmup")
		synctest.Wait()
		setDown(true)
		// A fix every 100 ms: 70 s of outage, then 3 s more with the link back.
		for i := range 700 {
			q.add(fmt.Sprint(i))
			time.Sleep(100 * time.Millisecond)
		}
		calls := api.snapshot()
		nDown := len(calls)
		for i, c := range calls[1:] {
			if len(c.data) != 1 {
				t.Fatalf("call of %d records during the outage, want 1 (a probe)", len(c.data))
			}
			if i > 0 && c.at-calls[i].at < probeEvery {
				t.Fatalf("probes %v apart, want at least %v", c.at-calls[i].at, probeEvery)
			}
		}
		if n := nDown - 1; n < 60 || n > 71 {
			t.Errorf("%d probes in a 70 s outage with a fix every 100 ms, want about one a second", n)
		}
		back := time.Since(api.start)
		setDown(false)
		for i := 700; i < 730; i++ {
			q.add(fmt.Sprint(i))
			time.Sleep(100 * time.Millisecond)
		}
		synctest.Wait()
		calls = api.snapshot()
		// Noticed within a second: the next probe succeeds. (A probe due at the
		// very instant of the return may run before the link is back: it fails
		// at that instant and does not count.)
		first := nDown
		for first < len(calls)-1 && !calls[first].ok && calls[first].at == back {
			first++
		}
		if c := calls[first]; !c.ok || c.at-back > probeEvery {
			t.Errorf("first call after the link returned at %v: %+v, want a success within %v", back, c, probeEvery)
		}
		// Everything recorded in the live window before the return (less
		// the second the return took to notice), and everything after, is
		// sent within two seconds of its recording or of the return; the
		// backlog is not (fleet jitter: 20 s).
		for i := 700 - int((liveWindow-2*probeEvery)/(100*time.Millisecond)); i < 730; i++ {
			at := whenSent(calls, fmt.Sprint(i))
			due := max(back, time.Duration(i+1)*100*time.Millisecond) + 2*time.Second
			if at < 0 || at > due {
				t.Errorf("live fix %d sent at %v, want by %v", i, at, due)
			}
		}
		if at := whenSent(calls, "0"); at >= 0 {
			t.Errorf("backlog sent at %v, before the backfill delay", at)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		stop()
		calls = api.snapshot()
		if first, second := whenSent(calls, "0"), whenSent(calls, "500"); first < 0 || second < first {
			t.Errorf("backlog fix 0 sent at %v, fix 500 at %v: want oldest first", first, second)
		}
		if q.pendingCount() != 0 {
			t.Errorf("pending = %d", q.pendingCount())
		}
	})
}

func TestLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		api := &recorder{}
		cfg := testConfig()
		cfg.Linger = 2 * time.Second
		u := New(cfg, api, q)
		stop := runUplink(t, u)
		q.add("a")
		time.Sleep(time.Second)
		q.add("b")
		synctest.Wait()
		if n := len(api.snapshot()); n != 0 {
			t.Errorf("sent before linger elapsed: %d calls", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		stop()
		want := [][]string{{"a", "b"}}
		if got := api.snapshot(); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("calls = %q, want %q", got, want)
		}
	})
}

// TestLingerWhileACallIsInFlight: a fix that arrives while a call is in
// flight lingers like the others and shares the next call, instead of going
// alone the moment the call returns (which cost a call a linger at 1 Hz).
func TestLingerWhileACallIsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		api := &recorder{reply: func(_ int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			time.Sleep(500 * time.Millisecond) // a call on a cellular link
			return okReply(in), nil
		}}
		cfg := testConfig()
		cfg.Linger = 2 * time.Second
		stop := runUplink(t, New(cfg, api, q))
		q.add("a")
		time.Sleep(2*time.Second + 100*time.Millisecond) // the call for a is in flight
		q.add("b")
		time.Sleep(time.Second)
		q.add("c")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		stop()
		want := [][]string{{"a"}, {"b", "c"}}
		if got := api.snapshot(); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("calls = %q, want %q", got, want)
		}
	})
}

func TestRunRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error
		msg  string
	}{
		{name: "no stream", cfg: Config{PartitionKey: "k"}, want: ErrNoStream},
		{name: "no key", cfg: Config{Stream: "s"}, want: ErrNoPartitionKey},
		{name: "backfill share above a shard", cfg: Config{Stream: "s", PartitionKey: "k", BackfillShare: 1.5},
			msg: "backfill share 1.5: more than one shard's limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New(tt.cfg, &recorder{}, newMemQueue()).Run(t.Context())
			if tt.want != nil && !errors.Is(err, tt.want) || tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)) {
				t.Errorf("Run = %v, want %v %q", err, tt.want, tt.msg)
			}
		})
	}
}

// A second Run starts afresh: it does not inherit the first one's failure
// streak (its first call is no retry, and no recovery is logged), and two
// Runs at once are refused.
func TestSecondRunStartsAfresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		var failing atomic.Bool
		failing.Store(true)
		api := &recorder{reply: func(_ int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			if failing.Load() {
				return nil, &smithy.GenericAPIError{Code: "InternalFailure"}
			}
			return okReply(in), nil
		}}
		var logs logBuffer
		cfg := testConfig()
		cfg.MaxBackoff = time.Second
		cfg.BackfillDelay = -1 // "a" is backlog by the second Run
		cfg.Log = slog.New(slog.NewTextHandler(&logs, nil))
		u := New(cfg, api, q)
		stop := runUplink(t, u)
		q.add("a")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if err := u.Run(t.Context()); !errors.Is(err, ErrRunning) {
			t.Errorf("second Run at once = %v, want ErrRunning", err)
		}
		stop()
		before := u.Stats()
		if before.Calls < 3 || !strings.Contains(logs.String(), "keeps failing") {
			t.Fatalf("the first Run did not fail for long: %+v\n%s", before, logs.String())
		}

		failing.Store(false)
		stop = runUplink(t, u)
		defer stop()
		synctest.Wait()
		after := u.Stats()
		if q.pendingCount() != 0 || after.Calls != before.Calls+1 {
			t.Fatalf("second Run: %d pending after %d calls", q.pendingCount(), after.Calls-before.Calls)
		}
		if after.Retries != before.Retries {
			t.Errorf("the second Run's first call counted as a retry of the first Run's failures")
		}
		if strings.Contains(logs.String(), "sending to kinesis again") {
			t.Errorf("the second Run logged a recovery from the first Run's failures:\n%s", logs.String())
		}
	})
}
