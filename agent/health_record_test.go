package main

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	healthSchemaOnce sync.Once
	healthSchema     *jsonschema.Schema
	healthSchemaErr  error
)

// checkHealthSchema validates a health row against docs/health.schema.json, the dashboard's contract.
func checkHealthSchema(t testing.TB, data []byte) {
	t.Helper()
	healthSchemaOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		healthSchema, healthSchemaErr = c.Compile("../docs/health.schema.json")
	})
	if healthSchemaErr != nil {
		t.Fatalf("compile docs/health.schema.json: %v", healthSchemaErr)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("health row is not JSON: %v\n%s", err, data)
	}
	if err := healthSchema.Validate(v); err != nil {
		t.Fatalf("health row does not match docs/health.schema.json: %v\n%s", err, data)
	}
}

// A row's times: ts is the last fix's GNSS time carried forward by the time since it arrived (gnss), else the
// gateway clock (gateway); clock_offset_s is the gateway clock against it; the backlog's age is measured on it.
func TestHealthRowTimes(t *testing.T) {
	gnss := time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)
	at := time.Now()
	now := at.Add(90 * time.Second)
	wantOff := roundTo(now.Round(0).Sub(gnss.Add(90*time.Second)).Seconds(), 3)

	r := buildHealthRow("TRK-1", newBootID(), 4, healthInterval, healthInputs{now: now, fix: &fixSeen{gnss: gnss, at: at},
		receiver: rxOK, pending: 30, oldestPending: gnss.Add(-time.Hour), uptime: 2 * time.Minute})
	checkHealthSchema(t, r.encode())
	if r.TS != "2026-11-29T01:01:30.000Z" || r.TSSrc != "gnss" || r.GNSSTS == nil || *r.GNSSTS != "2026-11-29T01:00:00.000Z" {
		t.Errorf("ts %s (%s), gnss_ts %v", r.TS, r.TSSrc, r.GNSSTS)
	}
	if r.ClockOffsetS == nil || *r.ClockOffsetS != wantOff {
		t.Errorf("clock_offset_s %v, want %v", r.ClockOffsetS, wantOff)
	}
	if r.OldestPendingS != 3690 {
		t.Errorf("oldest_pending_s %v, want 3690 (an hour before the fix, 90 s after it)", r.OldestPendingS)
	}

	r = buildHealthRow("TRK-1", newBootID(), 1, healthStart, healthInputs{now: now, receiver: rxUnavailable,
		receiverError: "open /dev/gps0: no such file or directory"})
	data := r.encode()
	checkHealthSchema(t, data)
	var m map[string]any
	json.Unmarshal(data, &m)
	if m["ts_src"] != "gateway" || m["gnss_ts"] != nil || m["clock_offset_s"] != nil || m["oldest_pending_s"] != 0.0 {
		t.Errorf("without a fix: %s", data)
	}
	if _, ok := m["check"]; ok {
		t.Errorf("a daemon's row carries check: %s", data)
	}
	r = buildHealthRow("TRK-1", newBootID(), 1, healthCheck, healthInputs{now: now, receiver: rxOK})
	if data := r.encode(); !bytes.Contains(data, []byte(`"check":true`)) {
		t.Errorf("check row without check: %s", data)
	}
}

// The schema catches a broken row.
func TestHealthSchemaRejects(t *testing.T) {
	good := buildHealthRow("TRK-1", "0123456789abcdef", 1, healthStart, healthInputs{now: time.Now(), receiver: rxOK}).encode()
	checkHealthSchema(t, good)
	for name, edit := range map[string]func(m map[string]any){
		"unknown field":  func(m map[string]any) { m["x"] = 1 },
		"no seq":         func(m map[string]any) { delete(m, "seq") },
		"bad state":      func(m map[string]any) { m["receiver"] = "fine" },
		"version":        func(m map[string]any) { m["v"] = 2 },
		"check false":    func(m map[string]any) { m["check"] = false },
		"ts without ms":  func(m map[string]any) { m["ts"] = "2026-11-29T01:00:00Z" },
		"negative count": func(m map[string]any) { m["pending"] = -1 },
	} {
		var m map[string]any
		json.Unmarshal(good, &m)
		edit(m)
		b, _ := json.Marshal(m)
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if healthSchema.Validate(v) == nil {
			t.Errorf("%s: schema accepts %s", name, b)
		}
	}
}
