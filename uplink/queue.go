package uplink

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Record is one opaque record waiting to be sent. The uplink never modifies
// Data and does not keep it after the record is acknowledged.
type Record struct {
	Seq  uint64 // queue sequence number, unique and increasing
	Data []byte // the Kinesis record payload
	// Queued is when the record was added to the queue, on this boot's
	// monotonic clock (a time.Now() reading, so that time.Since ignores
	// steps of the wall clock). Zero when unknown, e.g. a record a
	// previous run left on disk: such a record is never live. A record
	// queued less than liveWindow (plus Config.Linger) ago is live: sent
	// first, at once, never paced.
	Queued time.Time
}

// Queue is what the uplink drains.
//
// Contract: the uplink calls Ack for a record only after Kinesis returned a
// sequence number for it; until then the record must stay pending, whatever
// happens to the uplink (cancellation, crash). A record is deleted only by
// Ack (or by the queue's own bounds). Methods are called from the Run
// goroutine only, one at a time. Returned slices and their Data are owned by
// the uplink until the next call; the queue must not modify them.
type Queue interface {
	// Oldest returns up to max pending records with Seq > after, in
	// ascending Seq order.
	Oldest(after uint64, max int) ([]Record, error)
	// Newest returns up to max of the newest pending records, in descending
	// Seq order.
	Newest(max int) ([]Record, error)
	// Ack deletes the given records: Kinesis has stored them. Unknown
	// sequence numbers (already evicted) must be ignored, not errors.
	Ack(seqs ...uint64) error
	// Notify returns a channel signalled after records are added. It must
	// not lose a wake-up: use a channel with a buffer of one and a
	// non-blocking send, so that a signal sent while the uplink is busy is
	// seen when it next waits. The same channel is returned every time.
	Notify() <-chan struct{}
}

// API is the one Kinesis method the uplink uses. *kinesis.Client satisfies
// it; tests fake it with a function type.
type API interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}
