package uplink

import (
	"maps"
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
func (u *Uplink) Stats() Stats {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.stats
	s.CallErrors = maps.Clone(u.stats.CallErrors)
	s.FailedRecords = maps.Clone(u.stats.FailedRecords)
	if u.wire != nil {
		s.BytesSent, s.BytesReceived = u.wire.sent.Load(), u.wire.received.Load()
	}
	return s
}

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
