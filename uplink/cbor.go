package uplink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	smithy "github.com/aws/smithy-go"
	"github.com/aws/smithy-go/encoding/cbor"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/aws/smithy-go/transport/http/protocol/rpcv2"
)

// cborContentType is Kinesis' CBOR flavour of its JSON protocol, the AWS
// Java SDK's default for Kinesis since 2016.
const cborContentType = "application/x-amz-cbor-1.1"

// putRecords is the only operation sent as CBOR.
const putRecords = "PutRecords"

// cborPut is the SDK's protocol with PutRecords sent and answered in CBOR:
// record bytes travel raw instead of base64 inside JSON, so a record costs
// its own size on the wire rather than a third more, and the reply's keys
// lose their quotes. Measured through TLS and HTTP/2 that is about 80 B per
// fix at 1 Hz, on every fix a truck ever sends.
//
// The body is the Smithy RPCv2 CBOR encoding of the same input (members by
// name, blobs as byte strings), which is what Kinesis reads under this
// content type; the request keeps the JSON protocol's path and X-Amz-Target.
// Every other operation (DescribeStreamSummary for `gps-agent check`) keeps
// JSON: they are rare, and Kinesis encodes CBOR timestamps its own way. A
// reply that is not CBOR (an error page from a proxy or a load balancer) is
// read by the JSON protocol, as before.
type cborPut struct {
	smithyhttp.ClientProtocol // the SDK's awsJson 1.1
	cbor                      *rpcv2.Protocol
	target                    string // X-Amz-Target of PutRecords
}

func newCBORPut(json smithyhttp.ClientProtocol) *cborPut {
	svc := schemas.Kinesis_20131202
	return &cborPut{ClientProtocol: json, cbor: rpcv2.NewCBOR(svc), target: svc.Schema.ID().Name + "." + putRecords}
}

func (p *cborPut) SerializeRequest(ctx context.Context, s *smithy.OperationSchema, in smithy.Serializable,
	req *smithyhttp.Request) error {
	if s.ID().Name != putRecords {
		return p.ClientProtocol.SerializeRequest(ctx, s, in, req)
	}
	if err := p.cbor.SerializeRequest(ctx, s, in, req); err != nil {
		return err
	}
	if err := definiteLengths(req); err != nil {
		return err
	}
	// RPCv2's own routing headers and path mean nothing to Kinesis.
	req.URL.Path = "/"
	req.Header.Del("Smithy-Protocol")
	req.Header.Del("Accept")
	req.Header.Set("X-Amz-Target", p.target)
	req.Header.Set("Content-Type", cborContentType)
	return nil
}

func (p *cborPut) DeserializeResponse(ctx context.Context, s *smithy.OperationSchema, types *smithy.TypeRegistry,
	resp *smithyhttp.Response, out smithy.Deserializable) error {
	if s.ID().Name == putRecords && strings.HasPrefix(resp.Header.Get("Content-Type"), cborContentType) {
		return p.cbor.DeserializeResponse(ctx, s, types, resp, out)
	}
	return p.ClientProtocol.DeserializeResponse(ctx, s, types, resp, out)
}

// definiteLengths re-encodes the request body with definite lengths. smithy-go's
// encoder opens every map and array as indefinite and closes it with a break
// byte: 1 B more per map and array, 3 B on a one-record call, paid on every
// call of a truck's life (RFC 8949 allows both; Kinesis reads both). Member
// order changes, which CBOR maps, like JSON objects, leave free.
func definiteLengths(req *smithyhttp.Request) error {
	r := req.GetStream()
	if r == nil {
		return nil
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read cbor body: %w", err)
	}
	if v, err := cbor.Decode(body); err == nil {
		body = cbor.Encode(v)
	} // else: sent as the SDK wrote it, and the service says what is wrong with it
	sreq, err := req.SetStream(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("set cbor body: %w", err)
	}
	*req = *sreq
	return nil
}
