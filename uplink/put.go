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
func (l *loop) put(ctx context.Context, batch []Record) error {
	key := aws.String(l.cfg.PartitionKey)
	entries := make([]types.PutRecordsRequestEntry, len(batch))
	for i, r := range batch {
		entries[i] = types.PutRecordsRequestEntry{Data: r.Data, PartitionKey: key}
	}
	in := &kinesis.PutRecordsInput{StreamName: aws.String(l.cfg.Stream), Records: entries}
	sent := requestBytes(l.cfg.Stream, l.cfg.PartitionKey, batch)

	l.stats.call(len(batch), sent, l.failures > 0)

	l.callStart = time.Now()
	callCtx, cancel := l.callContext(ctx, MaxCallTime)
	if l.offline {
		// A probe of a down link: one that gets no connection or no reply
		// soon is given up, so that the next one (a fresh connection) can
		// notice the link's return within seconds, not after the client's
		// long timeouts; its connects are repeated meanwhile (probe.go).
		var cancelCall context.CancelFunc
		callCtx, cancelCall = probeContext(callCtx, l.meter.probeTimeout())
		cancelOuter := cancel
		cancel = func() { cancelCall(); cancelOuter() }
	}
	out, err := l.api.PutRecords(callCtx, in)
	abandoned := callCtx.Err()
	cancel()
	now := time.Now()
	if err != nil {
		if abandoned != nil && ctx.Err() != nil {
			return abandoned // stopping: not a failure of the link
		}
		cerr := classify(err)
		l.offline = offline(cerr)
		throttle := l.noteThrottle(now, cerr)
		if !throttle {
			// A call throttled as a whole got its reply: the link is up
			// and Kinesis asks to slow down, which the pacer does. It is
			// no outage, after which the backfill would wait its delay
			// again and restart from slow start.
			l.callFailures++
		}
		l.stats.received(replyHeaderBytes)
		l.stats.callFailed(errCode(cerr), throttle)
		return fmt.Errorf("put %d records: %w", len(batch), cerr)
	}
	l.offline = false
	l.meter.observe(sent, now.Sub(l.callStart), now)
	if l.callFailures >= outageCalls {
		l.delayBackfill(now, fmt.Sprintf("%d failed calls", l.callFailures))
	}
	l.callFailures = 0
	if len(out.Records) != len(batch) {
		return fmt.Errorf("put %d records: %w", len(batch), &RetryableError{
			Code: "malformed reply", Message: fmt.Sprintf("%d results for %d records", len(out.Records), len(batch))})
	}
	return l.settle(batch, out, now)
}

// settle acknowledges the records of batch that Kinesis stored, by their
// results in out, and returns the error of the worst of the others.
func (l *loop) settle(batch []Record, out *kinesis.PutRecordsOutput, now time.Time) error {
	var (
		acks  []uint64
		worst error
	)
	l.stats.received(replyBytes(out))
	for i, e := range out.Records {
		// kinesis-mock writes "ErrorCode": null on success; the real service
		// omits it. Both decode to nil; treat empty as success too.
		if code := aws.ToString(e.ErrorCode); code != "" {
			rerr := classifyCode(code, aws.ToString(e.ErrorMessage), nil)
			l.stats.recordFailed(code, l.noteThrottle(now, rerr))
			worst = worse(worst, rerr)
			continue
		}
		if aws.ToString(e.SequenceNumber) == "" {
			const code = "no sequence number"
			l.stats.recordFailed(code, false)
			worst = worse(worst, &RetryableError{Code: code})
			continue
		}
		acks = append(acks, batch[i].Seq)
		l.ackedMark = max(l.ackedMark, batch[i].Seq)
	}
	if len(acks) > 0 {
		l.stats.stored(time.Now())
	}

	if len(acks) > 0 {
		if err := l.q.Ack(acks...); err != nil {
			for _, s := range acks {
				l.unacked[s] = struct{}{}
			}
			return &RetryableError{Code: "queue", Err: fmt.Errorf("ack %d records stored by kinesis: %w", len(acks), err)}
		}
		l.stats.acked(len(acks))
	}
	if worst != nil {
		if len(acks) > 0 {
			// Progress: Kinesis stored part of the call. The failed records are retried after the first step's
			// back-off, not one that grows with every partly failed call: on a busy shard nearly every call has
			// a throttled record, and the pacer already slows the backlog for those.
			l.failures = 0
		}
		return fmt.Errorf("put %d records: %d failed: %w", len(batch), len(batch)-len(acks), worst)
	}
	return nil
}

// ackOwed retries acknowledging records Kinesis stored but the queue failed
// to delete.
func (l *loop) ackOwed() error {
	seqs := make([]uint64, 0, len(l.unacked))
	for s := range l.unacked {
		seqs = append(seqs, s)
	}
	if err := l.q.Ack(seqs...); err != nil {
		return &RetryableError{Code: "queue", Err: fmt.Errorf("ack %d records stored by kinesis: %w", len(seqs), err)}
	}
	clear(l.unacked)
	l.stats.acked(len(seqs))
	return nil
}

// noteThrottle slows the backfill if err is throttling, and says whether
// it is.
func (l *loop) noteThrottle(now time.Time, err error) bool {
	var re *RetryableError
	if errors.As(err, &re) && re.Throttle {
		l.pace.throttled(now)
		return true
	}
	return false
}

// callContext returns the context of one call: it ignores the end of ctx
// for up to Config.StopTimeout, so that a call in flight on stop can still
// return its sequence numbers, and ends after timeout (at most
// MaxCallTime), whatever the API. cancel must be called when the call
// returns.
func (l *loop) callContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(timeout, MaxCallTime))
	returned := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(l.cfg.StopTimeout)
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
