package uplinktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Faults is what a Proxy injects. Shares are probabilities in [0, 1],
// drawn per request (or per record, for FailRecords) from a seeded source,
// so a run is repeatable.
type Faults struct {
	// FailRecords is the share of PutRecords entries failed inside an
	// otherwise successful reply, with RecordErrorCode. Failed entries are
	// removed from the request before forwarding, as Kinesis does not store
	// them.
	FailRecords float64
	// RecordErrorCode is the ErrorCode of failed entries; default
	// ProvisionedThroughputExceededException.
	RecordErrorCode string
	// Status500 is the share of requests answered 500 InternalFailure
	// without forwarding.
	Status500 float64
	// Throttle is the share of requests answered 400
	// ProvisionedThroughputExceededException without forwarding.
	Throttle float64
	// DropReply is the share of requests forwarded (so stored) whose reply is
	// dropped: the connection is closed. The client cannot know the records
	// were stored; they are sent again (duplicates, at least once).
	DropReply float64
	// Blackout closes every connection without a reply: the link is down and
	// says so (a reset).
	Blackout bool
	// BlackHole drops every byte both ways, like a dead zone where packets
	// vanish and nothing is refused or reset: open connections go silent
	// for good, new ones are accepted and silent. Connections accepted after
	// the hole (the next Set without it) work normally.
	BlackHole bool
	// ErrorCode, if set, answers every request with this AWS error, e.g.
	// AccessDeniedException or ResourceNotFoundException, with
	// ErrorMessage and HTTP status ErrorStatus (default 400), without
	// forwarding.
	ErrorCode    string
	ErrorMessage string
	ErrorStatus  int
	// RecordsPerSecond, if > 0, lets at most this many PutRecords entries
	// a second through per stream, like a shard's 1,000 records/s: a token
	// bucket holding one second's worth. Entries beyond it fail with
	// ProvisionedThroughputExceededException inside the reply and are not
	// forwarded.
	RecordsPerSecond int
	// Shards, if set, throttles each shard of the stream to its own
	// records/s and bytes/s, as Kinesis does (shards.go).
	Shards *ShardLimits
}

// ProxyCounts counts what a Proxy did.
type ProxyCounts struct {
	Requests       int // requests received
	Forwarded      int // requests forwarded upstream
	FailedRecords  int // entries failed inside replies
	Status500      int
	Throttled      int
	DroppedReplies int // forwarded, reply dropped
	DroppedRecords int // records stored upstream whose reply was dropped, or abandoned by the client
	Abandoned      int // forwarded requests whose client had gone when the reply came
	Blackouts      int // requests dropped without forwarding
	Errors         int // requests answered with Faults.ErrorCode
	RateAdmitted   int // entries let through by the RecordsPerSecond bucket
	RateLimited    int // entries failed by the RecordsPerSecond bucket
	ShardAccepted  int // entries let through by the Shards buckets
	ShardThrottled int // entries failed by the Shards buckets
	HTTP2          int // requests received over HTTP/2
	Conns          int // connections accepted
	OpenAtHole     int // connections open when a BlackHole began: silent for good
	AcceptedInHole int // connections accepted during a BlackHole: silent for good
}

// Proxy is a fault-injecting HTTP proxy in front of a local Kinesis,
// listening on 127.0.0.1. Point a client at URL.
type Proxy struct {
	URL string
	// CAFile, for a proxy from NewTLSProxy, is a PEM file with the
	// certificate to trust (AWS_CA_BUNDLE); "" for plain HTTP.
	CAFile string

	target string
	srv    *httptest.Server
	client *http.Client
	hole   atomic.Bool // a BlackHole is open
	ln     *holeListener

	mu      sync.Mutex
	faults  Faults
	rnd     *rand.Rand
	counts  ProxyCounts
	buckets map[string]*bucket  // per stream, for RecordsPerSecond
	shards  map[string][]*shard // per stream, for Shards
	watch   func(Stored)        // told of each record stored, if set
	calls   []ShardCall         // PutRecords calls the Shards buckets judged
}

// bucket is a token bucket of records for one stream.
type bucket struct {
	tokens float64
	last   time.Time
}

// NewProxy starts a plain-HTTP proxy to target (an http:// endpoint)
// injecting no faults until Set. It is closed on test cleanup.
func NewProxy(t testing.TB, target string, seed uint64) *Proxy {
	t.Helper()
	p, err := StartProxy(target, ProxyOptions{Seed: seed})
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// NewTLSProxy is NewProxy terminating TLS and offering HTTP/2 by ALPN, as
// AWS endpoints do; the CA of its certificate (for 127.0.0.1) is in CAFile.
func NewTLSProxy(t testing.TB, target string, seed uint64) *Proxy {
	t.Helper()
	p, err := StartProxy(target, ProxyOptions{Seed: seed, CAFile: filepath.Join(t.TempDir(), "proxy-ca.pem")})
	if err != nil {
		t.Fatalf("tls proxy: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// ProxyOptions configures StartProxy.
type ProxyOptions struct {
	// Seed seeds the draws of Faults' shares, so a run is repeatable.
	Seed uint64
	// CAFile, if set, makes the proxy terminate TLS (HTTP/2 offered by
	// ALPN) with a certificate chain like an AWS endpoint's, and is where
	// the CA to trust is written (AWS_CA_BUNDLE).
	CAFile string
	// Hosts are more names or IP addresses for the certificate, beyond
	// 127.0.0.1 and kinesis.us-east-1.amazonaws.com.
	Hosts []string
}

// StartProxy starts a proxy to target (an http:// endpoint) on 127.0.0.1
// injecting no faults until Set; for programs, where tests use NewProxy or
// NewTLSProxy. The caller must Close it.
func StartProxy(target string, o ProxyOptions) (*Proxy, error) {
	p := newProxy(target, o.Seed)
	if o.CAFile == "" {
		p.srv.Start()
		p.URL = p.srv.URL
		return p, nil
	}
	cfg, ca, err := serverTLS(o.Hosts...)
	if err != nil {
		return nil, fmt.Errorf("start proxy: %w", err)
	}
	if err := os.WriteFile(o.CAFile, ca, 0o644); err != nil {
		return nil, fmt.Errorf("start proxy: %w", err)
	}
	p.srv.TLS = cfg
	p.srv.EnableHTTP2 = true
	p.srv.StartTLS()
	p.URL = p.srv.URL
	p.CAFile = o.CAFile
	return p, nil
}

func newProxy(target string, seed uint64) *Proxy {
	p := &Proxy{target: target, rnd: rand.New(rand.NewPCG(seed, seed)), client: &http.Client{}, buckets: map[string]*bucket{}, shards: map[string][]*shard{}}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serveCBOR))
	// Handshakes a black hole or a client's timeout cut short are the point
	// of the tests, not news.
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.ln = newHoleListener(p.srv.Listener, &p.hole)
	p.srv.Listener = p.ln
	return p
}

// Close stops the proxy.
func (p *Proxy) Close() {
	// Handlers may wait for bodies a black hole swallowed: close their
	// connections first, or Close waits for them for ever.
	p.srv.CloseClientConnections()
	p.srv.Close()
}

// Set replaces the faults injected from the next request on.
func (p *Proxy) Set(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.RecordErrorCode == "" {
		f.RecordErrorCode = "ProvisionedThroughputExceededException"
	}
	if f.ErrorStatus == 0 {
		f.ErrorStatus = http.StatusBadRequest
	}
	p.faults = f
	if f.BlackHole && !p.hole.Swap(true) {
		p.ln.open()
	}
	p.hole.Store(f.BlackHole)
}

// Counts returns what the proxy has done so far.
func (p *Proxy) Counts() ProxyCounts {
	h := p.ln.counts()
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts
	c.Conns, c.OpenAtHole, c.AcceptedInHole = h.accepted, h.openAtHole, h.inHole
	return c
}

type putRecordsRequest struct {
	Records    []json.RawMessage `json:"Records"`
	StreamName string            `json:"StreamName,omitempty"`
	StreamARN  string            `json:"StreamARN,omitempty"`
}

type putRecordsReply struct {
	FailedRecordCount int               `json:"FailedRecordCount"`
	Records           []json.RawMessage `json:"Records"`
	EncryptionType    string            `json:"EncryptionType,omitempty"`
}

// decide draws this request's fate under the lock.
func (p *Proxy) decide() (f Faults, status500, throttle, drop bool, chance func(float64) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts.Requests++
	f = p.faults
	chance = func(share float64) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return share > 0 && p.rnd.Float64() < share
	}
	roll := func(share float64) bool { return share > 0 && p.rnd.Float64() < share }
	status500 = roll(f.Status500)
	throttle = !status500 && roll(f.Throttle)
	drop = !status500 && !throttle && roll(f.DropReply)
	return
}

func (p *Proxy) count(fn func(c *ProxyCounts)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(&p.counts)
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	f, status500, throttle, drop, chance := p.decide()
	if r.ProtoMajor == 2 {
		p.count(func(c *ProxyCounts) { c.HTTP2++ })
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	switch {
	case f.ErrorCode != "":
		p.count(func(c *ProxyCounts) { c.Errors++ })
		awsError(w, f.ErrorStatus, f.ErrorCode, f.ErrorMessage)
		return
	case f.Blackout:
		p.count(func(c *ProxyCounts) { c.Blackouts++ })
		hangUp(w)
		return
	case status500:
		p.count(func(c *ProxyCounts) { c.Status500++ })
		awsError(w, http.StatusInternalServerError, "InternalFailure", "injected by uplinktest proxy")
		return
	case throttle:
		p.count(func(c *ProxyCounts) { c.Throttled++ })
		awsError(w, http.StatusBadRequest, "ProvisionedThroughputExceededException", "Rate exceeded (injected)")
		return
	}

	isPut := r.Header.Get("X-Amz-Target") == "Kinesis_20131202.PutRecords"
	var req putRecordsRequest
	var failed []bool  // per original entry
	var codes []string // error code per failed entry
	watch := p.watcher()
	if isPut && (f.FailRecords > 0 || f.RecordsPerSecond > 0 || f.Shards != nil || watch != nil) && json.Unmarshal(body, &req) == nil {
		failed = make([]bool, len(req.Records))
		codes = make([]string, len(req.Records))
		var keep []json.RawMessage
		rated := p.rate(req.stream(), f.RecordsPerSecond, len(req.Records))
		var shardRefused []bool
		if f.Shards != nil {
			if shardRefused, err = p.limitShards(req.stream(), *f.Shards, req.Records[:min(rated, len(req.Records))]); err != nil {
				awsError(w, http.StatusInternalServerError, "InternalFailure", "uplinktest proxy: "+err.Error())
				return
			}
			defer p.noteCall(req.Records, shardRefused, began)
		}
		for i, rec := range req.Records {
			switch {
			case i >= rated:
				failed[i], codes[i] = true, throughputExceeded
			case shardRefused != nil && shardRefused[i]:
				failed[i], codes[i] = true, throughputExceeded
			case chance(f.FailRecords):
				failed[i], codes[i] = true, f.RecordErrorCode
			default:
				keep = append(keep, rec)
			}
		}
		req.Records = keep
		nf := len(failed) - len(keep)
		p.count(func(c *ProxyCounts) {
			if f.RecordsPerSecond > 0 {
				c.RateAdmitted += min(rated, len(failed))
				c.RateLimited += len(failed) - min(rated, len(failed))
			}
		})
		if len(keep) == 0 {
			p.count(func(c *ProxyCounts) { c.FailedRecords += nf })
			writeReply(w, mergeReply(nil, failed, codes))
			return
		}
		body, _ = json.Marshal(req)
	} else {
		failed = nil
	}

	// Forwarded requests run to the end even if the client gives up, so the proxy knows what was stored.
	up, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		hangUp(w)
		return
	}
	up.Header = r.Header.Clone()
	up.Header.Set("Content-Length", strconv.Itoa(len(body)))
	up.ContentLength = int64(len(body))
	resp, err := p.client.Do(up)
	if err != nil {
		hangUp(w) // upstream down: the client sees a reset, as in an outage
		return
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	if err != nil {
		hangUp(w)
		return
	}
	p.count(func(c *ProxyCounts) { c.Forwarded++ })
	// A client that gave up waiting (its call timed out on a slow stand-in) lost this reply as surely as a
	// dropped one: what was stored will be sent again.
	abandoned := r.Context().Err() != nil
	if abandoned {
		p.count(func(c *ProxyCounts) { c.Abandoned++ })
	}
	if drop || abandoned {
		p.count(func(c *ProxyCounts) {
			c.DroppedReplies++
			if isPut && resp.StatusCode == http.StatusOK {
				var rep putRecordsReply
				if json.Unmarshal(reply, &rep) == nil {
					c.DroppedRecords += len(rep.Records) - rep.FailedRecordCount
				}
			}
		})
		hangUp(w)
		return
	}
	if failed != nil && resp.StatusCode == http.StatusOK {
		var rep putRecordsReply
		if err := json.Unmarshal(reply, &rep); err == nil && len(rep.Records) == len(req.Records) {
			n := 0
			for _, x := range failed {
				if x {
					n++
				}
			}
			p.count(func(c *ProxyCounts) { c.FailedRecords += n })
			if watch != nil {
				tellStored(watch, req.stream(), req.Records, rep.Records)
			}
			writeReply(w, mergeReply(&rep, failed, codes))
			return
		}
	}
	copyReplyHeader(w, resp.Header)
	if resp.StatusCode == http.StatusOK && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		reply = dropNulls(reply)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(reply)
}

// mergeReply puts injected failures back at their request positions among
// the upstream's results.
func mergeReply(up *putRecordsReply, failed []bool, codes []string) putRecordsReply {
	var out putRecordsReply
	next := 0
	for i, f := range failed {
		if f {
			entry, _ := json.Marshal(map[string]string{"ErrorCode": codes[i], "ErrorMessage": "injected by uplinktest proxy"})
			out.Records = append(out.Records, entry)
			out.FailedRecordCount++
			continue
		}
		out.Records = append(out.Records, up.Records[next])
		next++
	}
	if up != nil {
		out.FailedRecordCount += up.FailedRecordCount
		out.EncryptionType = up.EncryptionType
	}
	return out
}

const throughputExceeded = "ProvisionedThroughputExceededException"

func (r putRecordsRequest) stream() string {
	if r.StreamName != "" {
		return r.StreamName
	}
	return r.StreamARN
}

// rate takes up to n records from stream's bucket and returns how many it
// got; all n if perSecond is 0 (no limit).
func (p *Proxy) rate(stream string, perSecond, n int) int {
	if perSecond <= 0 {
		return n
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	b, ok := p.buckets[stream]
	if !ok {
		b = &bucket{tokens: float64(perSecond), last: now}
		p.buckets[stream] = b
	}
	b.tokens = min(float64(perSecond), b.tokens+now.Sub(b.last).Seconds()*float64(perSecond))
	b.last = now
	got := min(n, int(b.tokens))
	b.tokens -= float64(got)
	return got
}

func writeReply(w http.ResponseWriter, rep putRecordsReply) {
	b, _ := json.Marshal(rep)
	b = dropNulls(b) // kinesis-mock's entries, merged in
	setRequestIDs(w.Header())
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_, _ = w.Write(b)
}

func awsError(w http.ResponseWriter, status int, code, msg string) {
	setRequestIDs(w.Header())
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"__type":%q,"message":%q}`, code, msg)
}

// hangUp closes the client's connection without a reply; over HTTP/2,
// which cannot be hijacked, it resets the stream.
func hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, like a dropped cellular link
		}
		conn.Close()
	}
}
