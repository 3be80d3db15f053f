package uplinktest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/smithy-go/encoding/cbor"
)

// cborType is the content type of Kinesis' CBOR flavour, which the uplink
// uses for PutRecords.
const cborType = "application/x-amz-cbor-1.1"

// serveCBOR lets a Proxy inject its faults into CBOR calls as into JSON
// ones: a CBOR request is handed to serve as the same request in JSON (byte
// strings as base64), and serve's JSON reply goes back to the client in CBOR
// with the upstream's headers (request IDs), as Kinesis answers a CBOR call.
// Upstream sees JSON, which both stand-ins read.
func (p *Proxy) serveCBOR(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), cborType) {
		p.serve(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	js, err := cborToJSON(body)
	if err != nil {
		awsError(w, http.StatusBadRequest, "SerializationException", "uplinktest proxy: "+err.Error())
		return
	}
	jr := r.Clone(r.Context())
	jr.Body = io.NopCloser(bytes.NewReader(js))
	jr.ContentLength = int64(len(js))
	jr.Header.Set("Content-Type", "application/x-amz-json-1.1")
	cw := &cborReply{w: w, header: http.Header{}, status: http.StatusOK}
	p.serve(cw, jr)
	cw.finish()
}

// cborReply collects serve's JSON reply and writes it in CBOR.
type cborReply struct {
	w        http.ResponseWriter
	header   http.Header
	status   int
	buf      bytes.Buffer
	hijacked bool
}

func (c *cborReply) Header() http.Header         { return c.header }
func (c *cborReply) WriteHeader(status int)      { c.status = status }
func (c *cborReply) Write(b []byte) (int, error) { return c.buf.Write(b) }

// Hijack passes hangUp through: over HTTP/2, which cannot be hijacked, it
// resets the stream as hangUp does.
func (c *cborReply) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := c.w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	c.hijacked = true
	return hj.Hijack()
}

func (c *cborReply) finish() {
	if c.hijacked {
		return
	}
	body := c.buf.Bytes()
	if v, err := jsonToCBOR(body); err == nil {
		body = cbor.Encode(v)
		c.header.Set("Content-Type", cborType)
	}
	for k, vs := range c.header {
		c.w.Header()[k] = vs
	}
	c.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	c.w.WriteHeader(c.status)
	_, _ = c.w.Write(body)
}

// cborToJSON turns a CBOR document into JSON, byte strings into base64.
func cborToJSON(p []byte) ([]byte, error) {
	v, err := cbor.Decode(p)
	if err != nil {
		return nil, err
	}
	x, err := fromCBOR(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

func fromCBOR(v cbor.Value) (any, error) {
	switch v := v.(type) {
	case cbor.Map:
		m := make(map[string]any, len(v))
		for k, e := range v {
			x, err := fromCBOR(e)
			if err != nil {
				return nil, err
			}
			m[k] = x
		}
		return m, nil
	case cbor.List:
		l := make([]any, len(v))
		for i, e := range v {
			x, err := fromCBOR(e)
			if err != nil {
				return nil, err
			}
			l[i] = x
		}
		return l, nil
	case cbor.Slice:
		return base64.StdEncoding.EncodeToString(v), nil
	case cbor.String:
		return string(v), nil
	case cbor.Uint:
		return uint64(v), nil
	case cbor.NegInt:
		return -int64(v) - 1, nil
	case cbor.Float32:
		return float64(v), nil
	case cbor.Float64:
		return float64(v), nil
	case cbor.Bool:
		return bool(v), nil
	case *cbor.Nil:
		return nil, nil
	}
	return nil, fmt.Errorf("cbor %T not supported", v)
}

// jsonToCBOR turns a JSON document into CBOR values (a reply has no blobs).
func jsonToCBOR(p []byte) (cbor.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	return toCBOR(x)
}

func toCBOR(x any) (cbor.Value, error) {
	switch x := x.(type) {
	case map[string]any:
		m := make(cbor.Map, len(x))
		for k, e := range x {
			v, err := toCBOR(e)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case []any:
		l := make(cbor.List, len(x))
		for i, e := range x {
			v, err := toCBOR(e)
			if err != nil {
				return nil, err
			}
			l[i] = v
		}
		return l, nil
	case string:
		return cbor.String(x), nil
	case json.Number:
		if n, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return cbor.Uint(n), nil
		}
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return cbor.NegInt(-n - 1), nil
		}
		f, err := x.Float64()
		return cbor.Float64(f), err
	case bool:
		return cbor.Bool(x), nil
	case nil:
		return &cbor.Nil{}, nil
	}
	return nil, fmt.Errorf("json %T not supported", x)
}

// AsJSON returns a Kinesis request or reply body as JSON, for tests that
// look into the calls: a CBOR body (contentType application/x-amz-cbor-1.1,
// as the uplink sends PutRecords) converted, byte strings as base64, as
// JSON carries them; any other body as it is.
func AsJSON(contentType string, body []byte) ([]byte, error) {
	if !strings.HasPrefix(contentType, cborType) {
		return body, nil
	}
	return cborToJSON(body)
}
