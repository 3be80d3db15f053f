package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetedge/gps-agent/nmea"
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

// A modem's ports: each with its interface number and what it is for; the footer says to match the interface.
func TestPortsModemRoles(t *testing.T) {
	reports := []portReport{
		{PortInfo: nmea.PortInfo{Name: "/dev/ttyUSB1", USB: true, VID: "2c7c", PID: "0125", Interface: "01", Modem: "Quectel EC25/EG25", Role: nmea.RoleNMEA}},
		{PortInfo: nmea.PortInfo{Name: "/dev/ttyUSB2", USB: true, VID: "2c7c", PID: "0125", Interface: "02", Modem: "Quectel EC25/EG25", Role: nmea.RoleAT}},
		{PortInfo: nmea.PortInfo{Name: "/dev/ttyACM0", USB: true, VID: "1546", PID: "01a8", Interface: "00"}},
	}
	var b strings.Builder
	writePorts(&b, reports, false)
	out := b.String()
	lines := strings.Split(out, "\n")
	if !strings.Contains(lines[0], "IF") || !strings.Contains(lines[0], "MODEM PORT") {
		t.Errorf("header %q", lines[0])
	}
	for _, want := range []string{"/dev/ttyUSB1  2c7c:0125  01", "NMEA of Quectel EC25/EG25: [receiver] device",
		"AT of Quectel EC25/EG25: [receiver.at] device", "ATTRS{bInterfaceNumber}"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	b.Reset()
	writePorts(&b, reports[2:], false)
	if strings.Contains(b.String(), "MODEM PORT") {
		t.Errorf("modem column without a modem:\n%s", b.String())
	}
}
