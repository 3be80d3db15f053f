package uplinktest

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// AWS's write limits per shard: "Each shard can support writes up to 1,000
// records per second, up to a maximum data write total of 1 MiB per second"
// (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html).
// A record counts its data blob plus its partition key.
const (
	ShardRecordsPerSecond = 1000
	ShardBytesPerSecond   = 1 << 20
)

// ShardLimits makes a Proxy throttle as a provisioned Kinesis shard does,
// which no public stand-in enforces: a token bucket of records and one of
// bytes per shard, the shard of a record found as Kinesis finds it (the
// MD5 of its partition key, or its ExplicitHashKey, as a 128-bit integer,
// within a shard's hash-key range from ListShards). Entries the buckets
// cannot take fail inside the PutRecords reply with
// ProvisionedThroughputExceededException and are not stored; the rest of
// the call goes through.
type ShardLimits struct {
	// RecordsPerSecond per shard; default ShardRecordsPerSecond.
	RecordsPerSecond float64
	// BytesPerSecond per shard; default ShardBytesPerSecond.
	BytesPerSecond float64
	// Burst is how many seconds of each rate a bucket holds, full at the
	// start. AWS documents no burst; default 1 s.
	Burst time.Duration
}

func (s ShardLimits) withDefaults() ShardLimits {
	if s.RecordsPerSecond <= 0 {
		s.RecordsPerSecond = ShardRecordsPerSecond
	}
	if s.BytesPerSecond <= 0 {
		s.BytesPerSecond = ShardBytesPerSecond
	}
	if s.Burst <= 0 {
		s.Burst = time.Second
	}
	return s
}

// ShardSecond is what one shard took and refused in one second.
type ShardSecond struct {
	Shard     string
	Second    time.Time // start of the second, wall clock
	Accepted  int       // entries the buckets let through
	Throttled int       // entries failed by the buckets
}

// shard is one open shard of a stream and its buckets.
type shard struct {
	id         string
	start, end *big.Int // hash-key range, inclusive
	recs       float64
	bytes      float64
	last       time.Time
	seconds    map[int64]*ShardSecond
}

// shardEntry is what the limiter reads of a PutRecords entry.
type shardEntry struct {
	Data            string `json:"Data"`
	PartitionKey    string `json:"PartitionKey"`
	ExplicitHashKey string `json:"ExplicitHashKey"`
}

// hashKey returns the entry's 128-bit hash key, as Kinesis computes it.
func (e shardEntry) hashKey() *big.Int {
	if e.ExplicitHashKey != "" {
		if k, ok := new(big.Int).SetString(e.ExplicitHashKey, 10); ok {
			return k
		}
	}
	sum := md5.Sum([]byte(e.PartitionKey))
	return new(big.Int).SetBytes(sum[:])
}

// size is what the entry costs in a shard's byte bucket: data blob plus
// partition key.
func (e shardEntry) size() int {
	return base64.StdEncoding.DecodedLen(len(e.Data)) - padding(e.Data) + len(e.PartitionKey)
}

func padding(s string) int {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '='; i-- {
		n++
	}
	return n
}

// listShards reads stream's open shards from the upstream, once per
// stream.
func (p *Proxy) listShards(stream string) ([]*shard, error) {
	p.mu.Lock()
	got, ok := p.shards[stream]
	p.mu.Unlock()
	if ok {
		return got, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := (&Local{Endpoint: p.target}).client()
	var out []*shard
	var next *string
	for {
		in := &kinesis.ListShardsInput{NextToken: next}
		if next == nil {
			in.StreamName = aws.String(stream)
		}
		res, err := c.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards of %s: %w", stream, err)
		}
		for _, s := range res.Shards {
			if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
				continue // closed by a reshard: takes no writes
			}
			lo, ok1 := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
			hi, ok2 := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("list shards of %s: shard %s has a bad hash-key range", stream, aws.ToString(s.ShardId))
			}
			out = append(out, &shard{id: aws.ToString(s.ShardId), start: lo, end: hi, seconds: map[int64]*ShardSecond{}})
		}
		if res.NextToken == nil {
			break
		}
		next = res.NextToken
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Cmp(out[j].start) < 0 })
	p.mu.Lock()
	defer p.mu.Unlock()
	if got, ok := p.shards[stream]; ok {
		return got, nil
	}
	p.shards[stream] = out
	return out, nil
}

// limitShards decides, entry by entry, which of records the shards' buckets
// take: refused[i] is true for an entry to fail with
// ProvisionedThroughputExceededException. An entry it cannot read or place
// is let through (the upstream will judge it).
func (p *Proxy) limitShards(stream string, lim ShardLimits, records []json.RawMessage) ([]bool, error) {
	shards, err := p.listShards(stream)
	if err != nil {
		return nil, err
	}
	lim = lim.withDefaults()
	refused := make([]bool, len(records))
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, raw := range records {
		var e shardEntry
		if json.Unmarshal(raw, &e) != nil {
			continue
		}
		s := findShard(shards, e.hashKey())
		if s == nil {
			continue
		}
		s.refill(now, lim)
		sec := s.second(now)
		if s.recs < 1 || s.bytes < float64(e.size()) {
			refused[i] = true
			sec.Throttled++
			p.counts.ShardThrottled++
			continue
		}
		s.recs--
		s.bytes -= float64(e.size())
		sec.Accepted++
		p.counts.ShardAccepted++
	}
	return refused, nil
}

func findShard(shards []*shard, k *big.Int) *shard {
	i := sort.Search(len(shards), func(i int) bool { return shards[i].end.Cmp(k) >= 0 })
	if i < len(shards) && shards[i].start.Cmp(k) <= 0 {
		return shards[i]
	}
	return nil
}

// refill adds the tokens earned since the last call; a new shard starts
// full.
func (s *shard) refill(now time.Time, lim ShardLimits) {
	burst := lim.Burst.Seconds()
	if s.last.IsZero() {
		s.recs, s.bytes, s.last = lim.RecordsPerSecond*burst, lim.BytesPerSecond*burst, now
		return
	}
	dt := now.Sub(s.last).Seconds()
	if dt <= 0 {
		return
	}
	s.last = now
	s.recs = min(lim.RecordsPerSecond*burst, s.recs+dt*lim.RecordsPerSecond)
	s.bytes = min(lim.BytesPerSecond*burst, s.bytes+dt*lim.BytesPerSecond)
}

func (s *shard) second(now time.Time) *ShardSecond {
	k := now.Unix()
	sec, ok := s.seconds[k]
	if !ok {
		sec = &ShardSecond{Shard: s.id, Second: time.Unix(k, 0)}
		s.seconds[k] = sec
	}
	return sec
}

// ShardSeconds returns, per shard and second, what the ShardLimits buckets
// accepted and throttled, in time order.
func (p *Proxy) ShardSeconds() []ShardSecond {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []ShardSecond
	for _, shards := range p.shards {
		for _, s := range shards {
			for _, sec := range s.seconds {
				out = append(out, *sec)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Second.Equal(out[j].Second) {
			return out[i].Second.Before(out[j].Second)
		}
		return out[i].Shard < out[j].Shard
	})
	return out
}

// ShardCall is one PutRecords call the Shards buckets judged: a test can
// follow each sender's pace (its calls' sizes) and hear what it was told.
type ShardCall struct {
	PartitionKey string        // of the call's first entry
	At           time.Time     // when the call reached the proxy
	Took         time.Duration // until the proxy replied
	Records      int
	Throttled    int // entries failed by the buckets
}

// noteCall notes a call the buckets judged, when its reply is written.
func (p *Proxy) noteCall(records []json.RawMessage, refused []bool, at time.Time) {
	c := ShardCall{At: at, Took: time.Since(at), Records: len(records)}
	for _, r := range refused {
		if r {
			c.Throttled++
		}
	}
	var e shardEntry
	if len(records) > 0 && json.Unmarshal(records[0], &e) == nil {
		c.PartitionKey = e.PartitionKey
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, c)
}

// ShardCalls returns the PutRecords calls the Shards buckets judged, in
// the order their replies were written.
func (p *Proxy) ShardCalls() []ShardCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// ShardOf returns the ID of the shard of stream that partitionKey maps to,
// or "" if there is none.
func (p *Proxy) ShardOf(stream, partitionKey string) (string, error) {
	shards, err := p.listShards(stream)
	if err != nil {
		return "", err
	}
	if s := findShard(shards, shardEntry{PartitionKey: partitionKey}.hashKey()); s != nil {
		return s.id, nil
	}
	return "", nil
}
