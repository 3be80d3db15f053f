// Package benchfig records the figures `make bench` reports. Benchmark tests (TestBench..., run only when
// GPS_AGENT_BENCH_OUT names a file) call Record for each figure; `make bench` then prints every figure beside its
// target and writes them all to bench.json, so that runs on different days and machines compare.
//
// Figures live in tests, not in timed assertions: a slow CI machine must not fail `make test`.
package benchfig

import (
	"encoding/json"
	"os"
	"testing"
)

// Env names the file figures are appended to; when unset, benchmark tests skip.
const Env = "GPS_AGENT_BENCH_OUT"

// Figure is one measured number and the target it is judged against.
type Figure struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target,omitempty"` // human-readable, e.g. "<= 5 ms" or "floor" for a reference figure
	Met    *bool   `json:"met,omitempty"`    // nil for reference figures that have no target
	Note   string  `json:"note,omitempty"`
}

// Require skips t unless benchmarks were asked for (make bench).
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv(Env) == "" {
		t.Skip("benchmark: run with make bench")
	}
}

// Record appends f to the figures file and logs it.
func Record(t testing.TB, f Figure) {
	t.Helper()
	t.Logf("figure %s = %.4g %s (target %s)", f.Name, f.Value, f.Unit, f.Target)
	path := os.Getenv(Env)
	if path == "" {
		return
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatalf("encode figure: %v", err)
	}
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("open figures file: %v", err)
	}
	defer fh.Close()
	if _, err := fh.Write(append(b, '\n')); err != nil {
		t.Fatalf("write figure: %v", err)
	}
}

// AtMost is a Figure whose value meets its target when it is no more than limit.
func AtMost(name string, value float64, unit string, limit float64) Figure {
	met := value <= limit
	return Figure{Name: name, Value: value, Unit: unit, Target: "<= " + fmtNum(limit) + " " + unit, Met: &met}
}

// AtLeast is a Figure whose value meets its target when it is at least limit.
func AtLeast(name string, value float64, unit string, limit float64) Figure {
	met := value >= limit
	return Figure{Name: name, Value: value, Unit: unit, Target: ">= " + fmtNum(limit) + " " + unit, Met: &met}
}

// Reference is a Figure with no target, printed for comparison (a floor, a stand-in's own latency).
func Reference(name string, value float64, unit string) Figure {
	return Figure{Name: name, Value: value, Unit: unit, Target: "reference"}
}

func fmtNum(v float64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
