package uplink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// fixRecord is a realistic schema-v1 record (~190 B).
func fixRecord(seq int) []byte {
	return fmt.Appendf(nil, `{"v":1,"truck_id":"truck-7","seq":%d,"ts":"2026-11-25T16:%02d:%02d.000Z",`+
		`"lat":52.520008,"lon":13.404954,"speed_kmh":54.3,"course_deg":271.2,"alt_m":34.5,"fix":1,"sats":9,"hdop":0.9}`,
		seq, seq/60%60, seq%60)
}

// runFor starts u.Run and returns a function that cancels it and waits.
func runFor(t *testing.T, u *Uplink) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return 10 s after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

// sendOneByOne sends n fixes, each after the previous is acked, through a
// new Uplink on c, and returns its stats.
func sendOneByOne(t *testing.T, c API, n int) Stats {
	t.Helper()
	q := newFIFOQueue()
	u := New(testConfig(), c, q)
	stop := runFor(t, u)
	for i := range n {
		q.add(false, fixRecord(i))
		q.waitDrained(t, 20*time.Second)
	}
	stop()
	return u.Stats()
}

func TestWireBytesMeasuredAndHeadersTrimmed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesis-mock")
	}
	t.Parallel()
	l := uplinktest.StartKinesisMock(t, "fixes", 1)
	target := strings.TrimPrefix(l.Endpoint, "http://")
	const n = 20
	measure := func(sdkHeaders bool) (Stats, *uplinktest.Relay) {
		r := uplinktest.NewRelay(t, target)
		c, err := NewClient(t.Context(), ClientConfig{Region: uplinktest.Region, Endpoint: "http://" + r.Addr, sdkHeaders: sdkHeaders})
		if err != nil {
			t.Fatalf("new client: %v", err)
		}
		return sendOneByOne(t, c, n), r
	}
	trimmed, rt := measure(false)
	sdk, rs := measure(true)
	if got := len(l.ReadAll(t, "fixes")); got != 2*n {
		t.Fatalf("stream holds %d records, want %d", got, 2*n)
	}

	// The counters are the bytes on the wire, to the byte.
	for _, m := range []struct {
		name string
		s    Stats
		r    *uplinktest.Relay
	}{{"trimmed", trimmed, rt}, {"sdk default", sdk, rs}} {
		up, down := m.r.Bytes()
		if !m.s.BytesMeasured || m.s.BytesSent != uint64(up) || m.s.BytesReceived != uint64(down) {
			t.Errorf("%s: stats say %d B sent, %d B received (measured %v); the relay saw %d and %d",
				m.name, m.s.BytesSent, m.s.BytesReceived, m.s.BytesMeasured, up, down)
		}
	}

	head := string(rt.Head())
	for _, h := range []string{"X-Amz-User-Agent:", "Amz-Sdk-Invocation-Id:", "Amz-Sdk-Request:", "User-Agent:", "Accept-Encoding:"} {
		if strings.Contains(strings.ToLower(head), strings.ToLower(h)) {
			t.Errorf("trimmed request still carries %s\n%s", h, head[:min(len(head), 1500)])
		}
	}
	for _, h := range []string{"Authorization: AWS4-HMAC-SHA256", "X-Amz-Target: Kinesis_20131202.PutRecords", "X-Amz-Date:"} {
		if !strings.Contains(head, h) {
			t.Errorf("trimmed request lacks %q\n%s", h, head[:min(len(head), 1500)])
		}
	}
	if !strings.Contains(string(rs.Head()), "Amz-Sdk-Invocation-Id:") {
		t.Errorf("the SDK-default client sends no Amz-Sdk-Invocation-Id: nothing to compare")
	}
	perCall := func(s Stats) float64 { return float64(s.BytesSent) / float64(s.Calls) }
	saved := perCall(sdk) - perCall(trimmed)
	t.Logf("bytes sent per call: SDK default %.0f, trimmed %.0f, saved %.0f (%.0f%%); received per call %.0f",
		perCall(sdk), perCall(trimmed), saved, 100*saved/perCall(sdk), float64(trimmed.BytesReceived)/float64(trimmed.Calls))
	if saved < 150 {
		t.Errorf("trimming saves %.0f B per call, want >= 150", saved)
	}
}

// TestHTTPProxyFromEnvironment sends through a forward proxy named by
// HTTP_PROXY. The endpoint's host name exists only in the proxy, so records
// can arrive only through it. net/http reads the proxy variables once per
// process, so the uplink runs in a child process of the test binary.
func TestHTTPProxyFromEnvironment(t *testing.T) {
	if ep := os.Getenv("UPLINK_TEST_PROXY_CHILD"); ep != "" {
		proxyChild(t, ep)
		return
	}
	if testing.Short() {
		t.Skip("starts kinesalite")
	}
	l := uplinktest.StartKinesalite(t, "fixes", 1)
	backend, _ := url.Parse(l.Endpoint)
	fakeHost := "kinesis.test:" + backend.Port()

	var proxied atomic.Int32
	fwd := &http.Transport{Proxy: nil}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() || r.URL.Host != fakeHost {
			http.Error(w, "not a proxy request for "+fakeHost, http.StatusBadGateway)
			return
		}
		proxied.Add(1)
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Host = backend.Host
		resp, err := fwd.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(proxy.Close)
	t.Cleanup(fwd.CloseIdleConnections)

	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("HTTPS_PROXY", proxy.URL)
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	t.Setenv("http_proxy", "")
	t.Setenv("UPLINK_TEST_PROXY_CHILD", "http://"+fakeHost)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHTTPProxyFromEnvironment$", "-test.v").CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS")) {
		t.Fatalf("child did not run the test:\n%s", out)
	}
	if got, want := gotData(l.ReadAll(t, "fixes")), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("stream = %q, want %q", got, want)
	}
	if proxied.Load() == 0 {
		t.Errorf("no request went through the proxy")
	}
}

func proxyChild(t *testing.T, endpoint string) {
	c, err := NewClient(t.Context(), ClientConfig{Region: uplinktest.Region, Endpoint: endpoint})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	q := newMemQueue()
	u := New(testConfig(), c, q)
	startRun(t, u)
	q.add("a", "b", "c")
	q.waitDrained(t, 20*time.Second)
}

// logBuffer collects log lines safely.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestPermanentErrorEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesalite")
	}
	t.Parallel()
	tests := []struct {
		name, code, msg string
	}{
		{name: "access denied", code: "AccessDeniedException",
			msg: "User: arn:aws:iam::123456789012:user/truck-7 is not authorized to perform: kinesis:PutRecords"},
		{name: "stream not found", code: "ResourceNotFoundException",
			msg: "Stream fixes under account 123456789012 not found."},
	}
	l := uplinktest.StartKinesalite(t, "fixes", 1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := uplinktest.NewProxy(t, l.Endpoint, 1)
			p.Set(uplinktest.Faults{ErrorCode: tt.code, ErrorMessage: tt.msg})
			q := newMemQueue()
			var logs logBuffer
			cfg := testConfig()
			cfg.MaxBackoff = 500 * time.Millisecond
			cfg.Log = slog.New(slog.NewTextHandler(&logs, nil))
			u := New(cfg, localClient(t, &uplinktest.Local{Endpoint: p.URL}), q)
			startRun(t, u)
			q.add("a", "b")

			// Calls over a window: one per MaxBackoff, not a busy loop.
			const window = 2 * time.Second
			time.Sleep(window)
			calls := p.Counts().Errors
			if want := int(window / cfg.MaxBackoff); calls < want-1 || calls > want+1 {
				t.Errorf("%d calls in %v, want %d (one per max backoff)", calls, window, want)
			}
			if q.pendingCount() != 2 {
				t.Errorf("pending = %d, want 2: records must stay queued", q.pendingCount())
			}
			out := logs.String()
			if n := strings.Count(out, "level=ERROR"); n != 1 || !strings.Contains(out, tt.code) || !strings.Contains(out, tt.msg) {
				t.Errorf("want one error line with the code and the AWS message; got %d:\n%s", n, out)
			}
			if s := u.Stats(); !strings.Contains(s.LastError, tt.msg) || s.CallErrors[tt.code] != uint64(calls) {
				t.Errorf("stats = %+v", s)
			}

			// Fixed (policy attached, stream created): records flow.
			p.Set(uplinktest.Faults{})
			q.waitDrained(t, 10*time.Second)
			// The round acks before Run logs the recovery: on a slow (emulated) CPU the line can trail the drain.
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "sending to kinesis again"); {
				if time.Now().After(deadline) {
					t.Fatalf("recovery not logged:\n%s", logs.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// percentile returns the p-th percentile (0..100) of d, sorted in place.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p/100))]
}

// drainResult is what a backlog drain measured.
type drainResult struct {
	backlog     int
	rate        float64 // backlog records/s after the first call
	allowed     float64 // records/s the share allows
	p50, p99    time.Duration
	live        int
	proxy       uplinktest.ProxyCounts
	stats       Stats
	distinctGot int
}

// drain queues backlog fixes, starts an uplink paced to share behind a proxy
// limiting the stream to 1,000 records/s (one shard), adds a live fix every
// liveEvery until the backlog is gone, and measures.
func drain(t *testing.T, backlog int, share float64, liveEvery time.Duration) drainResult {
	t.Helper()
	l := uplinktest.StartKinesalite(t, "fixes", 1)
	p := uplinktest.NewProxy(t, l.Endpoint, 1)
	p.Set(uplinktest.Faults{RecordsPerSecond: shardRecordsPerSecond})
	q := newFIFOQueue()
	recs := make([][]byte, backlog)
	for i := range recs {
		recs[i] = fixRecord(i)
	}
	q.addOld(recs...)
	cfg := testConfig()
	cfg.BackfillShare = share
	cfg.BackfillDelay = -1
	cfg.MaxBackoff = 2 * time.Second
	u := New(cfg, localClient(t, &uplinktest.Local{Endpoint: p.URL}), q)
	start := time.Now()
	stop := runFor(t, u)

	live := 0
	tick := time.NewTicker(liveEvery)
	defer tick.Stop()
	timeout := time.After(time.Duration(float64(backlog)/(share*shardRecordsPerSecond)*2+30) * time.Second)
	for q.pendingCount() > 0 {
		select {
		case <-tick.C:
			q.add(true, fixRecord(backlog+live))
			live++
		case <-q.drained:
		case <-timeout:
			t.Fatalf("backlog not drained after %v: %d pending", time.Since(start), q.pendingCount())
		}
	}
	stop()

	// Sustained rate: the bucket starts full, so one second's worth goes at
	// once; the rest over the time until the last backlog ack.
	q.mu.Lock()
	var last time.Time
	for _, at := range q.ackAll[:backlog] {
		if at.After(last) {
			last = at
		}
	}
	q.mu.Unlock()
	burst := share * shardRecordsPerSecond * paceBurst
	lat, unacked := q.latencies()
	if unacked > 0 {
		t.Errorf("%d live records never acked", unacked)
	}
	r := drainResult{backlog: backlog, allowed: share * shardRecordsPerSecond, live: live,
		rate: (float64(backlog) - burst) / last.Sub(start).Seconds(), p50: percentile(lat, 50), p99: percentile(lat, 99),
		proxy: p.Counts(), stats: u.Stats()}
	got := gotData(l.ReadAll(t, "fixes"))
	r.distinctGot = len(slices.Compact(got))
	if r.distinctGot != backlog+live {
		t.Errorf("stream holds %d distinct records, want %d", r.distinctGot, backlog+live)
	}
	t.Logf("drained %d records (+%d live) at %.0f records/s (%.0f%% of %.0f allowed); live latency p50 %v p99 %v; proxy %+v; calls %d, throttles %d",
		backlog, live, r.rate, 100*r.rate/r.allowed, r.allowed, r.p50, r.p99, r.proxy, r.stats.Calls, r.stats.Throttles)
	return r
}

func TestBacklogDrainPacedUnderShardLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesalite, drains for ~6 s")
	}
	t.Parallel()
	r := drain(t, 3000, 0.5, 300*time.Millisecond)
	// Pacing is a ceiling the machine's speed cannot excuse; the floor is
	// loose here (a loaded CI machine) and measured by TestBenchBacklogDrain.
	if r.rate > 1.1*r.allowed {
		t.Errorf("backlog drained at %.0f records/s, above the %.0f allowed", r.rate, r.allowed)
	}
	if r.rate < 0.5*r.allowed {
		t.Errorf("backlog drained at %.0f records/s, under half the %.0f allowed", r.rate, r.allowed)
	}
	if r.p50 > 2*time.Second {
		t.Errorf("live latency p50 %v during the drain, want <= 2 s", r.p50)
	}
	if r.live == 0 {
		t.Errorf("no live record during the drain")
	}
}

func TestIoTCredentialsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesalite")
	}
	t.Parallel()
	ca := newPKI(t, "test")
	srv := newIoTServer(t, ca)
	certFile, keyFile := ca.issue(t, "truck-7", false)
	l := uplinktest.StartKinesalite(t, "fixes", 1)
	r := uplinktest.NewRelay(t, strings.TrimPrefix(l.Endpoint, "http://"))
	c, err := NewClient(t.Context(), ClientConfig{Region: uplinktest.Region, Endpoint: "http://" + r.Addr,
		IoT: &IoTConfig{Endpoint: srv.url, RoleAlias: "gps-agent-role", ThingName: "truck-7",
			CertFile: certFile, KeyFile: keyFile, CAFile: ca.caFile}})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	sendOneByOne(t, c, 3)
	head := string(r.Head())
	if !strings.Contains(head, "X-Amz-Security-Token: iot-session-token") || !strings.Contains(head, "Credential=ASIAIOTTEST/") {
		t.Errorf("calls not signed with the IoT credentials:\n%s", head[:min(len(head), 1500)])
	}
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("credentials fetched %d times for 3 calls, want 1 (cached)", n)
	}
}
