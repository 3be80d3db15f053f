package uplink

import (
	"sync"
	"testing"
	"time"
)

// fifoQueue is an in-memory Queue for volume: seqs are 1, 2, 3, ... so a
// record's index is its seq - 1, and every operation is cheap at 100,000
// records. It notes when records it was told to watch are added and acked.
type fifoQueue struct {
	mu      sync.Mutex
	recs    []Record
	gone    []bool
	head    int // no pending record before
	tail    int // no pending record at or after
	pending int
	notify  chan struct{}
	drained chan struct{} // signalled (non-blocking) after an Ack empties the queue
	added   map[uint64]time.Time
	acked   map[uint64]time.Time
	ackAll  []time.Time // when each seq was acked; zero while pending
}

func newFIFOQueue() *fifoQueue {
	return &fifoQueue{notify: make(chan struct{}, 1), drained: make(chan struct{}, 1),
		added: map[uint64]time.Time{}, acked: map[uint64]time.Time{}}
}

// add appends records and returns the seq of the last; watch notes their
// add and ack times.
func (q *fifoQueue) add(watch bool, data ...[]byte) uint64 {
	return q.addAt(time.Now(), watch, data...)
}

// addOld appends records a previous run left (Queued zero): backlog.
func (q *fifoQueue) addOld(data ...[]byte) uint64 { return q.addAt(time.Time{}, false, data...) }

// addAt appends records queued at (Record.Queued).
func (q *fifoQueue) addAt(at time.Time, watch bool, data ...[]byte) uint64 {
	q.mu.Lock()
	now := time.Now()
	for _, d := range data {
		seq := uint64(len(q.recs) + 1)
		q.recs = append(q.recs, Record{Seq: seq, Data: d, Queued: at})
		q.gone = append(q.gone, false)
		q.ackAll = append(q.ackAll, time.Time{})
		if watch {
			q.added[seq] = now
		}
	}
	q.tail = len(q.recs)
	q.pending += len(data)
	last := uint64(len(q.recs))
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return last
}

func (q *fifoQueue) Oldest(after uint64, max int) ([]Record, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Record
	for i := maxInt(q.head, int(after)); i < q.tail && len(out) < max; i++ {
		if !q.gone[i] {
			out = append(out, q.recs[i])
		}
	}
	return out, nil
}

func maxInt(a, b int) int { return max(a, b) }

func (q *fifoQueue) Newest(max int) ([]Record, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Record
	for i := q.tail - 1; i >= q.head && len(out) < max; i-- {
		if !q.gone[i] {
			out = append(out, q.recs[i])
		}
	}
	return out, nil
}

func (q *fifoQueue) Ack(seqs ...uint64) error {
	q.mu.Lock()
	now := time.Now()
	for _, s := range seqs {
		i := int(s) - 1
		if i < 0 || i >= len(q.recs) || q.gone[i] {
			continue
		}
		q.gone[i] = true
		q.ackAll[i] = now
		q.pending--
		if _, ok := q.added[s]; ok {
			q.acked[s] = now
		}
	}
	for q.head < q.tail && q.gone[q.head] {
		q.head++
	}
	for q.tail > q.head && q.gone[q.tail-1] {
		q.tail--
	}
	empty := q.pending == 0
	q.mu.Unlock()
	if empty {
		select {
		case q.drained <- struct{}{}:
		default:
		}
	}
	return nil
}

func (q *fifoQueue) Notify() <-chan struct{} { return q.notify }

func (q *fifoQueue) pendingCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending
}

// waitDrained waits until nothing is pending, or fails the test after d.
func (q *fifoQueue) waitDrained(t testing.TB, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for q.pendingCount() > 0 {
		select {
		case <-q.drained:
		case <-deadline.C:
			t.Fatalf("queue not drained after %v: %d pending", d, q.pendingCount())
		}
	}
}

// latencies returns add-to-ack times of the watched records, and how many
// were never acked.
func (q *fifoQueue) latencies() (lat []time.Duration, unacked int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for s, a := range q.added {
		if k, ok := q.acked[s]; ok {
			lat = append(lat, k.Sub(a))
		} else {
			unacked++
		}
	}
	return lat, unacked
}
