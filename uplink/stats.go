package uplink

import (
	"maps"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Stats are the uplink's counters since New. All counts only grow.
type Stats struct {
	RecordsSent  uint64 `json:"records_sent"`  // records put in calls, resends included
	RecordsAcked uint64 `json:"records_acked"` // records Kinesis stored and the queue deleted
	Calls        uint64 `json:"calls"`         // PutRecords calls made
	Retries      uint64 `json:"retries"`       // calls made after a failed round (resends and retries)
	// CallErrors counts calls that failed as a whole, by error code (AWS
	// code, "http 503", "timeout", "unreachable", ...).
	CallErrors map[string]uint64 `json:"call_errors"`
	// FailedRecords counts records rejected inside a successful call, by
	// ErrorCode (ProvisionedThroughputExceededException, InternalFailure,
	// KMS...).
	FailedRecords map[string]uint64 `json:"failed_records"`
	Throttles     uint64            `json:"throttles"` // throttling replies, per record or per call
	Oversize      uint64            `json:"oversize"`  // records skipped because they exceed MaxRecordBytes
	// BytesSent and BytesReceived are the traffic with Kinesis: what the
	// data plan pays for. With a client from NewClient they are measured on
	// the connections (BytesMeasured): request and status lines, headers,
	// bodies, and over HTTPS the TLS handshakes and framing, but no TCP/IP
	// headers; all calls of that client count, so give each Uplink its own
	// client. With any other API they are estimates from the batch sizes.
	BytesSent     uint64 `json:"bytes_sent"`
	BytesReceived uint64 `json:"bytes_received"`
	BytesMeasured bool   `json:"bytes_measured"`
	// BackfillRate is the backlog pace in force, records/s: the share of a
	// shard's 1,000 records/s, halved on throttling and recovering after.
	BackfillRate float64 `json:"backfill_rate"`
	// BackfillAt is when the backfill may start after its fleet-jitter
	// delay (start-up with a backlog, end of an outage); zero if never
	// delayed.
	BackfillAt time.Time `json:"backfill_at"`
	// NextAttempt is when the run loop is due to act next: the end of the
	// wait it is in (linger, backoff, backfill delay, pace), or, while it
	// works (a call, the queue), when that work began; a step takes at most
	// MaxCallTime. Zero while the loop waits for new records with nothing it
	// could send, and when Run is not running. A watchdog compares it with
	// the time: a loop well past it is stuck, one before it is waiting.
	NextAttempt   time.Time `json:"next_attempt"`
	LastSuccess   time.Time `json:"last_success"` // when Kinesis last stored a record
	LastError     string    `json:"last_error"`   // the last failure, with the AWS message
	LastErrorTime time.Time `json:"last_error_time"`
}

// Stats returns a snapshot of the counters. Safe to call at any time.
func (u *Uplink) Stats() Stats { return u.stats.snapshot() }

// counters keeps an Uplink's Stats: the run loop adds to them through the
// methods below, Stats reads them from any goroutine.
type counters struct {
	mu   sync.Mutex
	s    Stats
	wire *wireCounter // bytes measured on the connections; nil: estimated here
}

func newCounters(wire *wireCounter) *counters {
	return &counters{wire: wire, s: Stats{
		FailedRecords: make(map[string]uint64), CallErrors: make(map[string]uint64), BytesMeasured: wire != nil}}
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.CallErrors = maps.Clone(c.s.CallErrors)
	s.FailedRecords = maps.Clone(c.s.FailedRecords)
	if c.wire != nil {
		s.BytesSent, s.BytesReceived = c.wire.sent.Load(), c.wire.received.Load()
	}
	return s
}

// update runs fn on the counters under the lock.
func (c *counters) update(fn func(s *Stats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(&c.s)
}

// call counts a call of n records about to go out, estimated at sent bytes;
// retry says it follows a failed round.
func (c *counters) call(n, sent int, retry bool) {
	c.update(func(s *Stats) {
		s.Calls++
		s.RecordsSent += uint64(n)
		if retry {
			s.Retries++
		}
		if c.wire == nil {
			s.BytesSent += uint64(sent)
		}
	})
}

// received counts a reply estimated at n bytes.
func (c *counters) received(n int) {
	if c.wire == nil {
		c.update(func(s *Stats) { s.BytesReceived += uint64(n) })
	}
}

// callFailed counts a call that failed as a whole with code, and its
// throttling.
func (c *counters) callFailed(code string, throttle bool) {
	c.update(func(s *Stats) {
		s.CallErrors[code]++
		if throttle {
			s.Throttles++
		}
	})
}

// recordFailed counts a record rejected inside a successful call, and its
// throttling.
func (c *counters) recordFailed(code string, throttle bool) {
	c.update(func(s *Stats) {
		s.FailedRecords[code]++
		if throttle {
			s.Throttles++
		}
	})
}

// stored notes that Kinesis stored records at now.
func (c *counters) stored(now time.Time) { c.update(func(s *Stats) { s.LastSuccess = now }) }

// acked counts records the queue deleted.
func (c *counters) acked(n int) { c.update(func(s *Stats) { s.RecordsAcked += uint64(n) }) }

// oversize counts a record too large ever to be sent.
func (c *counters) oversize() { c.update(func(s *Stats) { s.Oversize++ }) }

// backfill publishes the backlog's pace and delay.
func (c *counters) backfill(rate float64, at time.Time) {
	c.update(func(s *Stats) { s.BackfillRate, s.BackfillAt = rate, at })
}

// failed notes the failure of a round.
func (c *counters) failed(err error, now time.Time) {
	c.update(func(s *Stats) { s.LastError, s.LastErrorTime = err.Error(), now })
}

// nextAttempt publishes when the run loop is next due (Stats.NextAttempt).
func (c *counters) nextAttempt(t time.Time) { c.update(func(s *Stats) { s.NextAttempt = t }) }

// replyBytes estimates a PutRecords reply's size: headers, then per record
// a sequence number (~56 digits) and shard ID, or an error code and message.
func replyBytes(out *kinesis.PutRecordsOutput) int {
	n := replyHeaderBytes + len(`{"FailedRecordCount":0,"Records":[]}`)
	for _, e := range out.Records {
		n += len(`{"SequenceNumber":"","ShardId":""},`) +
			len(aws.ToString(e.SequenceNumber)) + len(aws.ToString(e.ShardId)) +
			len(aws.ToString(e.ErrorCode)) + len(aws.ToString(e.ErrorMessage))
	}
	return n
}
