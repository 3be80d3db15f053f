package uplink

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// An aside is one small record for another stream (the agent's health rows)
// that rides the uplink's connection: the run loop sends it between its own
// calls, so it never competes with a position call for the link, and a fix
// that arrives meanwhile waits for at most that one small call
// (asideTimeout). It is best effort: held in memory only, replaced by a newer
// one before it is sent, dropped when its call fails (the next one carries
// fresher numbers anyway), and kept while the link is down, when its call
// would only time out.

// asideTimeout bounds an aside's call: the most a fix waits for it. A
// one-record call is one round trip (a few hundred milliseconds on a poor
// cellular link); one that takes longer is on a link the position calls
// will find out about themselves.
const asideTimeout = 5 * time.Second

// AsideStats counts the asides since New.
type AsideStats struct {
	Sent      uint64    `json:"sent"`     // stored by Kinesis
	Failed    uint64    `json:"failed"`   // dropped because their call or record failed
	Replaced  uint64    `json:"replaced"` // replaced by a newer one before they could be sent
	LastSent  time.Time `json:"last_sent,omitzero"`
	LastError string    `json:"last_error,omitempty"` // the last failure, with the AWS message
}

// aside is the Uplink's slot for the next aside. PutAside fills it from any
// goroutine; the run loop empties it.
type aside struct {
	mu      sync.Mutex
	pending *asideRecord
	stats   AsideStats
	wake    chan struct{} // capacity 1: "a record is pending"
}

type asideRecord struct {
	stream, key string
	data        []byte
}

func newAside() *aside { return &aside{wake: make(chan struct{}, 1)} }

// PutAside hands the run loop one record for stream with partition key key,
// replacing the one not yet sent, if any. It never blocks; data is not
// copied and must not change afterwards. Without a running Run the record
// waits for one.
func (u *Uplink) PutAside(stream, key string, data []byte) {
	a := u.aside
	a.mu.Lock()
	if a.pending != nil {
		a.stats.Replaced++
	}
	a.pending = &asideRecord{stream: stream, key: key, data: data}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// AsideStats returns a snapshot of the asides' counters.
func (u *Uplink) AsideStats() AsideStats {
	u.aside.mu.Lock()
	defer u.aside.mu.Unlock()
	return u.aside.stats
}

// take returns the pending record, or nil, and empties the slot.
func (a *aside) take() *asideRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.pending
	a.pending = nil
	return r
}

// putBack returns r to the slot unless a newer record took its place.
func (a *aside) putBack(r *asideRecord) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending == nil {
		a.pending = r
	}
}

// sendAside sends the pending aside, if any, in one call bounded by
// asideTimeout. While the link is down the record stays pending: the
// position probes find out when the link is back, and the loop sends it then
// (its wake is re-armed by the next PutAside or the next round).
func (l *loop) sendAside(ctx context.Context) {
	a := l.aside
	r := a.take()
	if r == nil || ctx.Err() != nil {
		if r != nil {
			a.putBack(r)
		}
		return
	}
	if l.offline {
		a.putBack(r)
		return
	}
	l.stats.nextAttempt(time.Now()) // working: the watchdog sees a call, not a missed wait
	in := &kinesis.PutRecordsInput{StreamName: aws.String(r.stream),
		Records: []types.PutRecordsRequestEntry{{Data: r.data, PartitionKey: aws.String(r.key)}}}
	callCtx, cancel := context.WithTimeout(ctx, asideTimeout)
	out, err := l.api.PutRecords(callCtx, in)
	cancel()
	if err == nil && len(out.Records) == 1 && aws.ToString(out.Records[0].ErrorCode) != "" {
		err = classifyCode(aws.ToString(out.Records[0].ErrorCode), aws.ToString(out.Records[0].ErrorMessage), nil)
	} else if err == nil && len(out.Records) != 1 {
		err = &RetryableError{Code: "malformed reply", Message: fmt.Sprintf("%d results for 1 record", len(out.Records))}
	} else if err != nil {
		err = classify(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.stats.Failed++
		a.stats.LastError = fmt.Sprintf("put aside to %s: %v", r.stream, err)
		return
	}
	a.stats.Sent++
	a.stats.LastSent = time.Now()
}

// waiting reports whether an aside waits, without taking it.
func (a *aside) waiting() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending != nil
}
