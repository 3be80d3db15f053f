package uplink

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// putFunc fakes the Kinesis API with a function.
type putFunc func(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)

func (f putFunc) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	return f(ctx, in, optFns...)
}

// memQueue is an in-memory Queue.
type memQueue struct {
	mu      sync.Mutex
	next    uint64
	order   []uint64 // every seq added, ascending; filtered by pending
	pending map[uint64][]byte
	queued  map[uint64]time.Time // Record.Queued of each seq
	acked   map[uint64]int       // how many times each seq was acked
	ackErr  error                // returned by Ack while set
	notify  chan struct{}
	changed chan struct{} // signalled (non-blocking) after every Ack
}

func newMemQueue() *memQueue {
	return &memQueue{next: 1, pending: map[uint64][]byte{}, queued: map[uint64]time.Time{}, acked: map[uint64]int{}, notify: make(chan struct{}, 1), changed: make(chan struct{}, 1)}
}

// add queues records just recorded (Queued now).
func (q *memQueue) add(data ...string) { q.addAt(time.Now(), data...) }

// addOld queues records a previous run left (Queued zero): backlog.
func (q *memQueue) addOld(data ...string) { q.addAt(time.Time{}, data...) }

// addAt queues records with Record.Queued at.
func (q *memQueue) addAt(at time.Time, data ...string) {
	q.mu.Lock()
	for _, d := range data {
		q.queued[q.next] = at
		q.pending[q.next] = []byte(d)
		q.order = append(q.order, q.next)
		q.next++
	}
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// sorted returns the pending seqs in ascending order, dropping acked ones
// from q.order as it goes.
func (q *memQueue) sorted() []uint64 {
	keys := q.order[:0]
	for _, k := range q.order {
		if _, ok := q.pending[k]; ok {
			keys = append(keys, k)
		}
	}
	q.order = keys
	return slices.Clone(keys)
}

func (q *memQueue) Oldest(after uint64, max int) ([]Record, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Record
	for _, k := range q.sorted() {
		if k > after && len(out) < max {
			out = append(out, Record{Seq: k, Data: q.pending[k], Queued: q.queued[k]})
		}
	}
	return out, nil
}

func (q *memQueue) Newest(max int) ([]Record, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	keys := q.sorted()
	slices.Reverse(keys)
	var out []Record
	for _, k := range keys {
		if len(out) < max {
			out = append(out, Record{Seq: k, Data: q.pending[k], Queued: q.queued[k]})
		}
	}
	return out, nil
}

func (q *memQueue) Ack(seqs ...uint64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ackErr != nil {
		return q.ackErr
	}
	for _, s := range seqs {
		delete(q.pending, s)
		q.acked[s]++
	}
	select {
	case q.changed <- struct{}{}:
	default:
	}
	return nil
}

func (q *memQueue) Notify() <-chan struct{} { return q.notify }

func (q *memQueue) pendingCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// waitDrained waits until nothing is pending, or fails the test after d.
func (q *memQueue) waitDrained(t testing.TB, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for q.pendingCount() > 0 {
		select {
		case <-q.changed:
		case <-deadline.C:
			t.Fatalf("queue not drained after %v: %d pending", d, q.pendingCount())
		}
	}
}
