package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestPortsProbe(t *testing.T) {
	f := newFeeder(t, 10)
	f.start()
	defer f.pause()
	missing := filepath.Join(t.TempDir(), "ttyUSB9")

	code, out, errOut := runCLI(t, nil, "ports", "--probe", "--listen", "1500ms", "--rates", "9600,4800", f.path, missing)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "DEVICE") || !strings.Contains(lines[0], "NMEA") {
		t.Fatalf("header %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], f.path) || !strings.Contains(lines[1], "yes, 9600 baud, fix") {
		t.Errorf("receiver line %q", lines[1])
	}
	if !strings.HasPrefix(lines[2], missing) || !strings.Contains(lines[2], "cannot open") {
		t.Errorf("missing device line %q", lines[2])
	}

	code, out, errOut = runCLI(t, nil, "ports", "--json", "--probe", "--listen", "1500ms", "--rates", "9600", f.path)
	if code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	var reports []portReport
	if err := json.Unmarshal([]byte(out), &reports); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(reports) != 1 || reports[0].Probe == nil || !reports[0].Probe.NMEA || reports[0].Probe.Baud != 9600 || reports[0].Probe.Sats <= 0 {
		t.Fatalf("--json: %s", out)
	}
}

func TestPortsList(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "ports", "--json")
	if code != 0 {
		t.Skipf("no serial enumeration here: exit %d: %s", code, errOut)
	}
	var reports []portReport
	if err := json.Unmarshal([]byte(out), &reports); err != nil || reports == nil {
		t.Fatalf("ports --json: %v, %q", err, out)
	}
	for _, r := range reports {
		if r.Probe != nil {
			t.Errorf("%s probed without --probe", r.Name)
		}
	}
}

func TestPortsBadRates(t *testing.T) {
	code, _, errOut := runCLI(t, nil, "ports", "--rates", "9600,fast")
	if code != 2 || !strings.Contains(errOut, `"fast"`) {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
