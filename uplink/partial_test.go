package uplink

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// A call that stored most of its records made progress: the few failed ones are retried after a short back-off,
// not one that grows with every partly failed call. On a busy shard nearly every call has a failed record, and
// an ever-growing back-off (up to MaxBackoff) would stall a backlog behind a handful of records.
func TestPartialFailureDoesNotEscalateBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newMemQueue()
		for i := range 2000 {
			q.add(fmt.Sprint(i))
		}
		entries := 0
		api := &recorder{reply: func(call int, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			out := &kinesis.PutRecordsOutput{}
			for i := range in.Records {
				entries++
				e := types.PutRecordsResultEntry{SequenceNumber: aws.String(fmt.Sprint(call, i))}
				if entries%3 == 0 { // a third of the entries fail
					e = types.PutRecordsResultEntry{ErrorCode: aws.String("InternalFailure"), ErrorMessage: aws.String("internal")}
				}
				out.Records = append(out.Records, e)
			}
			return out, nil
		}}
		cfg := testConfig()
		cfg.BackfillDelay = -1
		u := New(cfg, api, q)
		start := time.Now()
		stop := runUplink(t, u)
		defer stop()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		for q.pendingCount() > 0 && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		// The pacer lets 500 records a second go (4 s for 2,000), and a dozen rounds retry the failed third with
		// back-offs of at most 100 ms each: under 10 s. Escalating, a dozen partly failed calls in a row would
		// reach back-offs of tens of seconds.
		took := time.Since(start)
		t.Logf("drained in %v, %d calls", took, len(api.calls))
		if took > 10*time.Second {
			t.Errorf("2000 records with a third failing in each call took %v to drain, want < 10s", took)
		}
	})
}
