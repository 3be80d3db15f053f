package uplink

import "encoding/base64"

// batch collects the records of one PutRecords call within the API limits.
type batch struct {
	keyLen int // partition key length, counted against every record
	bytes  int // data + partition keys, against MaxCallBytes
	recs   []Record
	seqs   map[uint64]struct{}
	closed bool // a record did not fit: stop adding, keep order
}

func newBatch(keyLen int) *batch {
	return &batch{keyLen: keyLen, seqs: make(map[uint64]struct{})}
}

// add appends r if it fits; it reports false, and closes the batch, if not.
// Callers have checked r against MaxRecordBytes.
func (b *batch) add(r Record) bool {
	n := len(r.Data) + b.keyLen
	if b.closed || len(b.recs) >= MaxRecordsPerCall || b.bytes+n > MaxCallBytes {
		b.closed = true
		return false
	}
	b.recs = append(b.recs, r)
	b.seqs[r.Seq] = struct{}{}
	b.bytes += n
	return true
}

func (b *batch) has(seq uint64) bool { _, ok := b.seqs[seq]; return ok }

// Approximate wire sizes, for the byte counters. A PutRecords request is
// JSON over HTTPS: about 700 B of headers (SigV4 authorization, user agent,
// target, content type) before the body, and each record's data is base64,
// a third larger than the record.
const (
	requestHeaderBytes = 700
	replyHeaderBytes   = 250
	// {"Records":[ ... ],"StreamName":""}
	requestFrameBytes = len(`{"Records":[],"StreamName":""}`)
	// {"Data":"","PartitionKey":""}, plus the comma between entries.
	requestEntryBytes = len(`{"Data":"","PartitionKey":""},`)
)

// requestBytes estimates the bytes a PutRecords call puts on the wire,
// ignoring TLS framing and TCP/IP overhead.
func requestBytes(stream, key string, recs []Record) int {
	n := requestHeaderBytes + requestFrameBytes + len(stream)
	for _, r := range recs {
		n += requestEntryBytes + base64.StdEncoding.EncodedLen(len(r.Data)) + len(key)
	}
	return n
}
