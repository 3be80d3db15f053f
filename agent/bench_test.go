package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/fleetedge/gps-agent/internal/benchfig"
	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// acceptWatch is a reverse proxy in front of local Kinesis that notes when each record's PutRecords reply,
// carrying its Kinesis sequence number, passes back to the agent: the moment a fix is accepted.
type acceptWatch struct {
	mu       sync.Mutex
	accepted map[uint64]time.Time // record seq -> reply time
}

func newAcceptWatch(t *testing.T, target string) (*acceptWatch, string) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	w := &acceptWatch{accepted: map[uint64]time.Time{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		req := resp.Request
		if req.Header.Get("X-Amz-Target") != "Kinesis_20131202.PutRecords" || resp.StatusCode != http.StatusOK {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		// PutRecords goes as CBOR: look at both bodies as JSON.
		reqJSON, err := uplinktest.AsJSON(req.Header.Get("Content-Type"), req.Context().Value(putBodyKey{}).([]byte))
		if err != nil {
			return nil
		}
		respJSON, err := uplinktest.AsJSON(resp.Header.Get("Content-Type"), body)
		if err != nil {
			return nil
		}
		w.note(reqJSON, respJSON, time.Now())
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), putBodyKey{}, body)))
	}))
	t.Cleanup(srv.Close)
	return w, srv.URL
}

type putBodyKey struct{}

func (w *acceptWatch) note(reqBody, respBody []byte, at time.Time) {
	var in struct{ Records []struct{ Data []byte } }
	var out struct {
		Records []struct {
			SequenceNumber *string
			ErrorCode      *string
		}
	}
	if json.Unmarshal(reqBody, &in) != nil || json.Unmarshal(respBody, &out) != nil || len(in.Records) != len(out.Records) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, r := range out.Records {
		if r.SequenceNumber == nil || (r.ErrorCode != nil && *r.ErrorCode != "") {
			continue
		}
		if rec, err := parseRecord(in.Records[i].Data); err == nil {
			if _, seen := w.accepted[rec.Seq]; !seen {
				w.accepted[rec.Seq] = at
			}
		}
	}
}

// TestBenchEpochToKinesis measures, at 10 Hz, the time from an epoch's last sentence written to the receiver's
// pty to the PutRecords reply that accepted its fix, through the whole agent process, against kinesalite.
func TestBenchEpochToKinesis(t *testing.T) {
	benchfig.Require(t)
	const stream = "bench"
	k := uplinktest.StartKinesalite(t, stream, 1)
	watch, endpoint := newAcceptWatch(t, k.Endpoint)
	f := newFeeder(t, 10)
	agent := startAgent(t, "run", "--config", writeConfig(t, f.path, endpoint, stream))
	f.start()
	const epochs = 300 // 30 s at 10 Hz
	waitEpochs(t, f, epochs)
	written := f.pause()
	// Let the last fixes land, then stop.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		watch.mu.Lock()
		n := len(watch.accepted)
		watch.mu.Unlock()
		if n >= written-20 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	agent.stop(t)

	// Match each accepted record to its epoch by its GNSS time.
	var all arrived
	collect(t, k.ReadAll(t, stream), &all)
	period := 100 * time.Millisecond
	var lat []time.Duration
	watch.mu.Lock()
	for seq, at := range watch.accepted {
		r, ok := all.bySeq[seq]
		if !ok {
			continue
		}
		epoch := int(r.TS.Sub(f.sim.Fix(0).Time) / period)
		if epoch < 20 || epoch >= len(f.at) { // skip start-up (receiver open, first cycle learned)
			continue
		}
		lat = append(lat, at.Sub(f.at[epoch]))
	}
	watch.mu.Unlock()
	if len(lat) < epochs/2 {
		t.Fatalf("only %d of %d fixes measured", len(lat), written)
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	benchfig.Record(t, benchfig.AtMost("fix epoch -> accepted by local Kinesis (kinesalite), 10 Hz, p50", ms(p50), "ms", 5))
	benchfig.Record(t, benchfig.AtMost("fix epoch -> accepted by local Kinesis (kinesalite), 10 Hz, p99", ms(p99), "ms", 25))

	// The floor: kinesalite's own latency for one PutRecords call of one record.
	c := k.Client(t)
	var floor []time.Duration
	for i := range 100 {
		start := time.Now()
		_, err := c.PutRecords(t.Context(), &kinesis.PutRecordsInput{
			StreamName: ptr(stream),
			Records:    []types.PutRecordsRequestEntry{{Data: []byte(`{"floor":1}`), PartitionKey: ptr("floor")}},
		})
		if err != nil {
			t.Fatalf("floor call %d: %v", i, err)
		}
		floor = append(floor, time.Since(start))
	}
	slices.Sort(floor)
	benchfig.Record(t, benchfig.Reference("kinesalite one-record PutRecords (floor), p50", ms(floor[50]), "ms"))
	benchfig.Record(t, benchfig.Reference("kinesalite one-record PutRecords (floor), p99", ms(floor[99]), "ms"))
}

func ptr[T any](v T) *T { return &v }
