package uplink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// put sends batch in one PutRecords call, acknowledges what Kinesis stored
// and returns the error of what it did not, if anything. If ctx ends during
// the call, the call may go on for Config.StopTimeout.
func (u *Uplink) put(ctx context.Context, batch []Record) error {
	key := aws.String(u.cfg.PartitionKey)
	entries := make([]types.PutRecordsRequestEntry, len(batch))
	for i, r := range batch {
		entries[i] = types.PutRecordsRequestEntry{Data: r.Data, PartitionKey: key}
	}
	in := &kinesis.PutRecordsInput{StreamName: aws.String(u.cfg.Stream), Records: entries}
	sent := requestBytes(u.cfg.Stream, u.cfg.PartitionKey, batch)

	u.mu.Lock()
	u.stats.Calls++
	u.stats.RecordsSent += uint64(len(batch))
	if u.failures > 0 {
		u.stats.Retries++
	}
	if u.wire == nil {
		u.stats.BytesSent += uint64(sent)
	}
	u.mu.Unlock()

	callCtx, cancel := u.callContext(ctx)
	out, err := u.api.PutRecords(callCtx, in)
	abandoned := callCtx.Err()
	cancel()
	now := time.Now()
	if err != nil {
		if abandoned != nil {
			return abandoned
		}
		cerr := classify(err)
		u.callFailures++
		u.mu.Lock()
		u.stats.CallErrors[errCode(cerr)]++
		if u.wire == nil {
			u.stats.BytesReceived += uint64(replyHeaderBytes)
		}
		u.noteThrottle(now, cerr)
		u.mu.Unlock()
		return fmt.Errorf("put %d records: %w", len(batch), cerr)
	}
	if u.callFailures >= outageCalls {
		u.delayBackfill(now, fmt.Sprintf("%d failed calls", u.callFailures))
	}
	u.callFailures = 0
	if len(out.Records) != len(batch) {
		return fmt.Errorf("put %d records: %w", len(batch), &RetryableError{
			Code: "malformed reply", Message: fmt.Sprintf("%d results for %d records", len(out.Records), len(batch))})
	}

	var (
		acks  []uint64
		worst error
		recv  = replyBytes(out)
	)
	u.mu.Lock()
	if u.wire == nil {
		u.stats.BytesReceived += uint64(recv)
	}
	for i, e := range out.Records {
		// kinesis-mock writes "ErrorCode": null on success; the real service
		// omits it. Both decode to nil; treat empty as success too.
		if code := aws.ToString(e.ErrorCode); code != "" {
			rerr := classifyCode(code, aws.ToString(e.ErrorMessage), nil)
			u.stats.FailedRecords[code]++
			u.noteThrottle(now, rerr)
			worst = worse(worst, rerr)
			continue
		}
		if aws.ToString(e.SequenceNumber) == "" {
			const code = "no sequence number"
			u.stats.FailedRecords[code]++
			worst = worse(worst, &RetryableError{Code: code})
			continue
		}
		acks = append(acks, batch[i].Seq)
		u.ackedMark = max(u.ackedMark, batch[i].Seq)
	}
	if len(acks) > 0 {
		u.stats.LastSuccess = time.Now()
	}
	u.mu.Unlock()

	if len(acks) > 0 {
		if err := u.q.Ack(acks...); err != nil {
			for _, s := range acks {
				u.unacked[s] = struct{}{}
			}
			return &RetryableError{Code: "queue", Err: fmt.Errorf("ack %d records stored by kinesis: %w", len(acks), err)}
		}
		u.mu.Lock()
		u.stats.RecordsAcked += uint64(len(acks))
		u.mu.Unlock()
	}
	if worst != nil {
		if len(acks) > 0 {
			// Progress: Kinesis stored part of the call. The failed records are retried after the first step's
			// back-off, not one that grows with every partly failed call: on a busy shard nearly every call has
			// a throttled record, and the pacer already slows the backlog for those.
			u.failures = 0
		}
		return fmt.Errorf("put %d records: %d failed: %w", len(batch), len(batch)-len(acks), worst)
	}
	return nil
}

// ackOwed retries acknowledging records Kinesis stored but the queue failed
// to delete.
func (u *Uplink) ackOwed() error {
	seqs := make([]uint64, 0, len(u.unacked))
	for s := range u.unacked {
		seqs = append(seqs, s)
	}
	if err := u.q.Ack(seqs...); err != nil {
		return &RetryableError{Code: "queue", Err: fmt.Errorf("ack %d records stored by kinesis: %w", len(seqs), err)}
	}
	clear(u.unacked)
	u.mu.Lock()
	u.stats.RecordsAcked += uint64(len(seqs))
	u.mu.Unlock()
	return nil
}

// noteThrottle counts err if it is throttling, and slows the backfill.
// Callers hold u.mu.
func (u *Uplink) noteThrottle(now time.Time, err error) {
	var re *RetryableError
	if errors.As(err, &re) && re.Throttle {
		u.stats.Throttles++
		u.pace.throttled(now)
	}
}

// callContext returns the context of one call: it ignores the end of ctx
// for up to Config.StopTimeout, so that a call in flight on stop can still
// return its sequence numbers, and ends after MaxCallTime, whatever the API.
// cancel must be called when the call returns.
func (u *Uplink) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), MaxCallTime)
	returned := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(u.cfg.StopTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-returned:
		}
	})
	return callCtx, func() {
		close(returned)
		stop()
		cancel()
	}
}

// worse returns the more severe of a and b: what needs a person beats
// what clears by itself.
func worse(a, b error) error {
	if a == nil || (needsPerson(b) && !needsPerson(a)) {
		return b
	}
	return a
}
