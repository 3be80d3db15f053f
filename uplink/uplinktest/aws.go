package uplinktest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
)

// What AWS puts on every Kinesis reply and the stand-ins may not: the
// proxy keeps replies the size a truck pays for. Both stand-ins, captured
// on 2026-11-29 (kinesalite 3.x and kinesis-mock from devenv/package.json),
// send x-amzn-RequestId (a UUID) and x-amz-id-2 (96 base64 characters) and
// 56-digit sequence numbers, as AWS does; kinesalite adds HTTP/1.1's
// Keep-Alive header and kinesis-mock writes absent members as null
// ("ErrorCode":null,"ErrorMessage":null on every record), which AWS's JSON
// protocol never does. Replies the proxy makes itself (injected faults)
// carry the same headers.

// hopHeaders belong to one HTTP/1.1 connection and are not forwarded (nor
// allowed over HTTP/2).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Content-Length"}

// copyReplyHeader copies an upstream reply's headers to w the way AWS
// would have sent them.
func copyReplyHeader(w http.ResponseWriter, h http.Header) {
	for k, v := range h {
		w.Header()[k] = v
	}
	for _, k := range hopHeaders {
		w.Header().Del(k)
	}
	setRequestIDs(w.Header())
}

// setRequestIDs adds AWS's request-ID headers if h lacks them.
func setRequestIDs(h http.Header) {
	if h.Get("X-Amzn-Requestid") == "" {
		var u [16]byte
		_, _ = rand.Read(u[:])
		u[6], u[8] = u[6]&0x0f|0x40, u[8]&0x3f|0x80
		h.Set("X-Amzn-Requestid", fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:]))
	}
	if h.Get("X-Amz-Id-2") == "" {
		var id [72]byte
		_, _ = rand.Read(id[:])
		h.Set("X-Amz-Id-2", base64.StdEncoding.EncodeToString(id[:]))
	}
}

// dropNulls removes members whose value is null from JSON objects, at any
// depth; b is returned as it is if it holds no null or is not JSON.
func dropNulls(b []byte) []byte {
	if !bytes.Contains(b, []byte("null")) {
		return b
	}
	out, err := dropNullsValue(b)
	if err != nil {
		return b
	}
	return out
}

func dropNullsValue(b []byte) ([]byte, error) {
	switch t := bytes.TrimSpace(b); {
	case len(t) > 0 && t[0] == '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(t, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			if string(bytes.TrimSpace(v)) == "null" {
				delete(m, k)
				continue
			}
			nv, err := dropNullsValue(v)
			if err != nil {
				return nil, err
			}
			m[k] = nv
		}
		return json.Marshal(m)
	case len(t) > 0 && t[0] == '[':
		var a []json.RawMessage
		if err := json.Unmarshal(t, &a); err != nil {
			return nil, err
		}
		for i, v := range a {
			nv, err := dropNullsValue(v)
			if err != nil {
				return nil, err
			}
			a[i] = nv
		}
		return json.Marshal(a)
	}
	return b, nil
}
