package main

import (
	"bytes"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

// checkSchema validates a record against docs/record.schema.json, the contract data engineers build on. Every
// record the tests produce goes through it.
func checkSchema(t testing.TB, data []byte) {
	t.Helper()
	schemaOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		schema, schemaErr = c.Compile("../docs/record.schema.json")
	})
	if schemaErr != nil {
		t.Fatalf("compile docs/record.schema.json: %v", schemaErr)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("record is not JSON: %v\n%s", err, data)
	}
	if err := schema.Validate(v); err != nil {
		t.Fatalf("record does not match docs/record.schema.json: %v\n%s", err, data)
	}
}

// The schema is strict enough to catch a broken record, and takes both versions as written.
func TestSchemaRejects(t *testing.T) {
	for _, good := range []string{
		`{"v":2,"truck_id":"T-1","seq":3,"ts":"2026-11-25T15:52:14.250Z","lat":48.1,"lon":11.5,"fix":1,"rx":-20}`,
		`{"v":1,"truck_id":"T-1","seq":3,"ts":"2026-11-25T15:52:14.000Z","lat":48.1000000,"lon":11.5000000,"fix":1,"rx":"2026-11-25T15:52:14.310Z"}`,
	} {
		checkSchema(t, []byte(good))
	}
	for name, bad := range map[string]string{
		"unknown field":     `{"v":2,"truck_id":"T-1","seq":3,"ts":"2026-11-25T15:52:14.250Z","lat":48.1,"lon":11.5,"fix":1,"x":1}`,
		"no seq":            `{"v":2,"truck_id":"T-1","ts":"2026-11-25T15:52:14.250Z","lat":48.1,"lon":11.5,"fix":1}`,
		"lat range":         `{"v":2,"truck_id":"T-1","seq":3,"ts":"2026-11-25T15:52:14.250Z","lat":91,"lon":11.5,"fix":1}`,
		"ts format":         `{"v":2,"truck_id":"T-1","seq":3,"ts":"2026-11-25 15:52:14","lat":48.1,"lon":11.5,"fix":1}`,
		"ts without ms":     `{"v":2,"truck_id":"T-1","seq":3,"ts":"2026-11-25T15:52:14Z","lat":48.1,"lon":11.5,"fix":1}`,
		"version":           `{"v":3,"truck_id":"T-1","seq":3,"ts":"2026-11-25T15:52:14.250Z","lat":48.1,"lon":11.5,"fix":1}`,
		"short key":         `{"v":2,"id":"T-1","seq":3,"ts":"2026-11-25T15:52:14.250Z","lat":48.1,"lon":11.5,"fix":1}`,
		"short speed key":   `{"v":2,"truck_id":"T-1","seq":3,"ts":"2026-11-25T15:52:14.250Z","lat":48.1,"lon":11.5,"kmh":3,"fix":1}`,
		"v1 rx in v2":       `{"v":2,"truck_id":"T-1","seq":3,"ts":"2026-11-25T15:52:14.250Z","lat":48.1,"lon":11.5,"fix":1,"rx":"2026-11-25T15:52:14.310Z"}`,
		"v2 rx in v1":       `{"v":1,"truck_id":"T-1","seq":3,"ts":"2026-11-25T15:52:14.250Z","lat":48.1,"lon":11.5,"fix":1,"rx":60}`,
		"no-fix quality":    `{"v":2,"truck_id":"T-1","seq":3,"ts":"2026-11-25T15:52:14.250Z","lat":48.1,"lon":11.5,"fix":0}`,
		"unknown date_src":  `{"v":2,"truck_id":"T-1","seq":3,"ts":"2026-11-25T15:52:14.250Z","lat":48.1,"lon":11.5,"fix":1,"date_src":"gga"}`,
		"truck_id too wild": `{"v":2,"truck_id":"T 1","seq":3,"ts":"2026-11-25T15:52:14.250Z","lat":48.1,"lon":11.5,"fix":1}`,
	} {
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(bad)))
		if schema.Validate(v) == nil {
			t.Errorf("%s: schema accepts %s", name, bad)
		}
	}
}
