package crosstest

import (
	"os"
	"testing"

	"github.com/fleetedge/gps-agent/internal/benchfig"
)

// TestBenchBinarySize records the size of each stripped target for `make bench`: armv7 against the 10 MiB a
// gateway image budgets for the agent, the others for reference.
func TestBenchBinarySize(t *testing.T) {
	benchfig.Require(t)
	dist := build(t, allArches...)
	const mib = 1 << 20
	for _, arch := range allArches {
		st, err := os.Stat(binary(dist, arch))
		if err != nil {
			t.Fatal(err)
		}
		size := float64(st.Size()) / mib
		name := "binary size " + arch + " stripped"
		if arch == "armv7" {
			benchfig.Record(t, benchfig.AtMost(name, size, "MiB", 10))
		} else {
			benchfig.Record(t, benchfig.Reference(name, size, "MiB"))
		}
	}
}
