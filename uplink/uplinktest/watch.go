package uplinktest

import (
	"encoding/base64"
	"encoding/json"
	"time"
)

// Stored is a record the upstream stored, as the proxy saw it go through.
type Stored struct {
	Stream       string
	PartitionKey string
	Data         []byte
	At           time.Time // when the upstream's reply reached the proxy
}

// Watch has fn told of every record a PutRecords stores from now on (fn
// nil: no more), in the handler's goroutine: fn must be quick and safe for
// concurrent use. Records stored under a reply the proxy then drops are
// not told. Tests use it to time each record's arrival without reading
// the stream back.
func (p *Proxy) Watch(fn func(Stored)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watch = fn
}

func (p *Proxy) watcher() func(Stored) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.watch
}

// tellStored tells fn of each of sent whose result in got has a sequence
// number.
func tellStored(fn func(Stored), stream string, sent, got []json.RawMessage) {
	now := time.Now()
	for i, raw := range sent {
		var res struct {
			SequenceNumber string `json:"SequenceNumber"`
		}
		if i >= len(got) || json.Unmarshal(got[i], &res) != nil || res.SequenceNumber == "" {
			continue
		}
		var e shardEntry
		if json.Unmarshal(raw, &e) != nil {
			continue
		}
		data, err := base64.StdEncoding.DecodeString(e.Data)
		if err != nil {
			continue
		}
		fn(Stored{Stream: stream, PartitionKey: e.PartitionKey, Data: data, At: now})
	}
}
