package buffer

import (
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

const bboltModule = "go.etcd.io/bbolt"

// TestPreflightBboltVersion: preflight.go reads bbolt's pages itself, with the layout of one bbolt release. A
// bbolt upgrade may change that layout silently (preflight would then pass a damaged file to bbolt, or move a
// good one aside), so it must be re-verified first: this test fails until it is.
func TestPreflightBboltVersion(t *testing.T) {
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]string{"go.mod": requiredVersion(string(gomod), bboltModule)}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == bboltModule {
				versions["the test binary"] = d.Version
			}
		}
	}
	if versions["go.mod"] == "" {
		t.Fatalf("go.mod names no %s", bboltModule)
	}
	for where, v := range versions {
		if v != preflightBbolt {
			t.Errorf("%s has %s %s, but buffer/preflight.go mirrors the page layout of %s: re-verify preflight "+
				"(page header, branch and leaf elements, meta page, freelist) against the new release's internal/common, "+
				"then set preflightBbolt to %s (see buffer/FORMAT.md, \"bbolt's layout\")",
				where, bboltModule, v, preflightBbolt, v)
		}
	}
}

// requiredVersion returns the version go.mod requires of module, "" if none.
func requiredVersion(gomod, module string) string {
	for _, line := range strings.Split(gomod, "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == module {
			return f[1]
		}
	}
	return ""
}
