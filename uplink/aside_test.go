package uplink

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// streamCalls is a fake API that notes which stream each call went to and
// can hold the health stream's calls until released.
type streamCalls struct {
	mu      sync.Mutex
	log     []string // "stream:data,data"
	hold    chan struct{}
	fail    bool // the health stream's calls fail
	entered chan struct{}
}

func (s *streamCalls) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	var data []string
	for _, e := range in.Records {
		data = append(data, string(e.Data)+"@"+aws.ToString(e.PartitionKey))
	}
	stream := aws.ToString(in.StreamName)
	s.mu.Lock()
	s.log = append(s.log, stream+":"+strings.Join(data, ","))
	s.mu.Unlock()
	if stream == "health" {
		if s.entered != nil {
			s.entered <- struct{}{}
		}
		if s.hold != nil {
			select {
			case <-s.hold:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if s.fail {
			out := okReply(in)
			out.Records[0] = failEntry("ResourceNotFoundException")
			return out, nil
		}
	}
	return okReply(in), nil
}

func (s *streamCalls) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// An aside goes to its own stream with its own key; one put before Run and
// replaced before it could go is counted, not sent.
func TestAsideReplacedAndSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &streamCalls{}
		q := newMemQueue()
		u := New(testConfig(), api, q)
		u.PutAside("health", "truck-7", []byte("h1"))
		u.PutAside("health", "truck-7", []byte("h2"))
		stop := runUplink(t, u)
		synctest.Wait()
		q.add("fix1")
		time.Sleep(time.Second)
		synctest.Wait()
		u.PutAside("health", "truck-7", []byte("h3"))
		synctest.Wait()
		stop()
		got := strings.Join(api.calls(), " ")
		if want := "health:h2@truck-7 fixes:fix1@truck-7 health:h3@truck-7"; got != want {
			t.Errorf("calls %q, want %q", got, want)
		}
		if st := u.AsideStats(); st.Sent != 2 || st.Replaced != 1 || st.Failed != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

// A fix that arrives while an aside's call is in flight goes out as soon as
// that call returns: it waits for one small call, no more.
func TestAsideDelaysAFixByOneCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &streamCalls{hold: make(chan struct{}), entered: make(chan struct{}, 1)}
		q := newMemQueue()
		u := New(testConfig(), api, q)
		stop := runUplink(t, u)
		synctest.Wait()
		u.PutAside("health", "truck-7", []byte("h1"))
		<-api.entered
		q.add("fix1")
		time.Sleep(300 * time.Millisecond) // the aside's round trip
		close(api.hold)
		start := time.Now()
		q.waitDrained(t, time.Minute)
		if d := time.Since(start); d > 0 {
			t.Errorf("the fix went out %v after the aside returned", d)
		}
		stop()
		if got := strings.Join(api.calls(), " "); got != "health:h1@truck-7 fixes:fix1@truck-7" {
			t.Errorf("calls %q", got)
		}
	})
}

// An aside whose call never returns is given up after asideTimeout; one
// Kinesis rejects is dropped and counted, never retried.
func TestAsideBoundedAndDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &streamCalls{hold: make(chan struct{}), fail: true}
		q := newMemQueue()
		u := New(testConfig(), api, q)
		stop := runUplink(t, u)
		synctest.Wait()
		start := time.Now()
		u.PutAside("health", "truck-7", []byte("h1"))
		q.add("fix1")
		q.waitDrained(t, time.Minute)
		if d := time.Since(start); d != asideTimeout {
			t.Errorf("the fix waited %v, want the aside's timeout %v", d, asideTimeout)
		}
		close(api.hold)
		u.PutAside("health", "truck-7", []byte("h2"))
		synctest.Wait()
		time.Sleep(time.Minute)
		synctest.Wait()
		stop()
		st := u.AsideStats()
		if st.Sent != 0 || st.Failed != 2 || !strings.Contains(st.LastError, "ResourceNotFoundException") {
			t.Errorf("stats %+v", st)
		}
		if n := len(api.calls()); n != 3 {
			t.Errorf("%d calls, want 3 (no retry of a failed aside): %q", n, api.calls())
		}
	})
}
