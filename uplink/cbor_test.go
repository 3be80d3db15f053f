package uplink

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// PutRecords goes as CBOR with the record bytes raw, and what arrives is
// byte for byte what was sent, on both stand-ins (kinesalite through the
// preload in uplinktest that makes it store CBOR records as it stores JSON
// ones). Errors in CBOR and errors in JSON (from a proxy in front) are
// classified as before.
func TestPutRecordsCBOR(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesis-mock and kinesalite")
	}
	t.Parallel()
	for _, start := range []func(testing.TB, string, int) *uplinktest.Local{uplinktest.StartKinesisMock, uplinktest.StartKinesalite} {
		putCBOR(t, start(t, "fixes", 1))
	}
}

func putCBOR(t *testing.T, l *uplinktest.Local) {
	r := uplinktest.NewRelay(t, strings.TrimPrefix(l.Endpoint, "http://"))
	c, err := NewClient(t.Context(), ClientConfig{Region: uplinktest.Region, Endpoint: "http://" + r.Addr})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	every := make([]byte, 256) // every byte value, and no valid UTF-8
	for i := range every {
		every[i] = byte(255 - i)
	}
	sent := [][]byte{fixRecord(1), every, []byte(`{"v":2}`)}
	var entries []types.PutRecordsRequestEntry
	for _, d := range sent {
		entries = append(entries, types.PutRecordsRequestEntry{Data: d, PartitionKey: aws.String("truck-7")})
	}
	out, err := c.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String("fixes"), Records: entries})
	if err != nil {
		t.Fatalf("put records: %v", err)
	}
	if len(out.Records) != len(sent) || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("reply %+v", out)
	}
	for i, e := range out.Records {
		if len(aws.ToString(e.SequenceNumber)) < 20 || aws.ToString(e.ShardId) == "" {
			t.Errorf("record %d: sequence number %q, shard %q", i, aws.ToString(e.SequenceNumber), aws.ToString(e.ShardId))
		}
	}
	got := l.ReadAll(t, "fixes")
	if len(got) != len(sent) {
		t.Fatalf("stream holds %d records, want %d", len(got), len(sent))
	}
	for i := range sent {
		if !bytes.Equal(got[i].Data, sent[i]) {
			t.Errorf("record %d: stored %q, sent %q", i, got[i].Data, sent[i])
		}
	}
	head := r.Head()
	if !bytes.Contains(head, []byte("Content-Type: "+cborContentType)) || !bytes.Contains(head, fixRecord(1)) {
		t.Errorf("the request is not CBOR with the record raw:\n%q", head[:min(len(head), 1500)])
	}
	if body, err := firstBody(head); err != nil {
		t.Errorf("the request: %v", err)
	} else if body[0] == 0xbf || body[len(body)-1] == 0xff {
		// smithy-go's encoder writes indefinite lengths: a break byte more per map and array.
		t.Errorf("the body has indefinite-length maps or arrays (% x ... % x)", body[:4], body[len(body)-4:])
	}
	for _, h := range []string{"Smithy-Protocol", "Accept:", "/service/"} {
		if bytes.Contains(head, []byte(h)) {
			t.Errorf("the request carries RPCv2's %q:\n%q", h, head[:min(len(head), 1500)])
		}
	}

	// An error in CBOR.
	_, err = c.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String("nope"), Records: entries[:1]})
	var pe *PermanentError
	if cerr := classify(err); !errors.As(cerr, &pe) || pe.Code != "ResourceNotFoundException" {
		t.Errorf("put to a missing stream: %v, classified %v; want permanent ResourceNotFoundException", err, cerr)
	}
	// An error in JSON, from something in front of Kinesis.
	p := uplinktest.NewProxy(t, l.Endpoint, 1)
	p.Set(uplinktest.Faults{Throttle: 1})
	pc, err := NewClient(t.Context(), ClientConfig{Region: uplinktest.Region, Endpoint: p.URL})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	_, err = pc.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String("fixes"), Records: entries[:1]})
	var re *RetryableError
	if cerr := classify(err); !errors.As(cerr, &re) || !re.Throttle {
		t.Errorf("a JSON throttling reply: %v, classified %v; want retryable throttle", err, cerr)
	}
}

// firstBody is the body of the first HTTP/1.1 request in head, by its Content-Length.
func firstBody(head []byte) ([]byte, error) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(req.Body)
	if err != nil || len(body) < 4 {
		return nil, fmt.Errorf("body %q: %v", body, err)
	}
	return body, nil
}
