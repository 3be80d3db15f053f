package uplink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// healthRowSample is a health row of the agent's size (docs/health.schema.json), about 400 B.
const healthRowSample = `{"v":1,"truck_id":"TRK-0042","boot":"9f0c1e2a7b3d4c5e","seq":118,"ts":"2026-11-29T01:20:31.402Z",` +
	`"ts_src":"gnss","gnss_ts":"2026-11-29T01:20:21.000Z","reason":"interval","receiver":"ok","sentences":70113,` +
	`"fixes":7011,"pending":0,"oldest_pending_s":0,"dropped":0,"lost":0,"filtered":0,"clock_offset_s":0.012,` +
	`"bytes_sent":812345,"bytes_received":401234,"uptime_s":7031.2,"agent_version":"1.4.0"}`

// healthRowBytesTarget bounds what one health row costs at the TLS socket, both ways, on an open connection:
// measured 858 B (544 up, 313 down): a fix call's ~470 B plus the row's extra ~240 B, and its own stream name.
const healthRowBytesTarget = 900

// Health rows ride the positions' connection through the production client (CBOR, HTTP/2 over TLS) and land in
// their own stream; each costs under healthRowBytesTarget at the socket, measured on the emulated link.
func TestAsideTLSBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesalite")
	}
	l := uplinktest.StartKinesalite(t, "fixes", 1)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	kc := l.Client(t)
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("health"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if err := kinesis.NewStreamExistsWaiter(kc, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 500*time.Millisecond
	}).Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("health")}, 50*time.Second); err != nil {
		t.Fatal(err)
	}
	link := uplinktest.NewLink(t, l.Endpoint, uplinktest.LinkOptions{Profile: uplinktest.Loopback(), TLS: true})
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "local-secret",
		"AWS_CA_BUNDLE": link.CAFile}
	c, err := NewClient(ctx, ClientConfig{Region: uplinktest.Region, Endpoint: link.URL, env: fakeEnv(env, "")})
	if err != nil {
		t.Fatal(err)
	}
	q := newFIFOQueue()
	cfg := testConfig()
	cfg.PartitionKey = "TRK-0042"
	u := New(cfg, c, q)
	stop := runFor(t, u)
	q.add(false, fixRecordV2(0)) // the handshake, out of the measure
	q.waitDrained(t, 30*time.Second)

	const rows = 20
	m0 := link.Meter()
	for i := range rows {
		u.PutAside("health", "TRK-0042", []byte(healthRowSample))
		deadline := time.Now().Add(30 * time.Second)
		for u.AsideStats().Sent+u.AsideStats().Failed < uint64(i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("row %d not sent: %+v", i, u.AsideStats())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	m1 := link.Meter()
	stop()
	if st := u.AsideStats(); st.Sent != rows || st.Failed != 0 {
		t.Fatalf("aside stats %+v", st)
	}
	per := float64(m1.Up-m0.Up+m1.Down-m0.Down) / rows
	t.Logf("a health row of %d B costs %.0f B at the TLS socket (%.0f up, %.0f down); %.2f MB a day at one a minute",
		len(healthRowSample), per, float64(m1.Up-m0.Up)/rows, float64(m1.Down-m0.Down)/rows, per*1440/1e6)
	if per > healthRowBytesTarget {
		t.Errorf("%.0f B per health row, want <= %d", per, healthRowBytesTarget)
	}
	got := l.ReadAll(t, "health")
	if len(got) != rows || got[0].PartitionKey != "TRK-0042" || !strings.Contains(string(got[0].Data), `"v":1`) {
		t.Errorf("health stream holds %d rows, want %d; first %+v", len(got), rows, got[0])
	}
}
