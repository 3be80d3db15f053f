package nmea

import (
	"path/filepath"
	"testing"
)

// TestIdentifyModemPorts reads a fake sysfs tree (testdata/sysfs: the links
// and attributes Linux shows for a Quectel EG25-G, a Sierra Wireless EM7455
// and a Telit LE910C1 on the option driver, a u-blox receiver on cdc_acm and
// an on-board UART): every port of one modem has the same USB ID, and the
// interface number says which is NMEA and which is AT.
func TestIdentifyModemPorts(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("testdata", "sysfs"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                  string
		vid, pid, iface, role string
		modem                 string
	}{
		{"ttyUSB0", "2c7c", "0125", "00", RoleDiag, "Quectel EC25/EG25"},
		{"ttyUSB1", "2c7c", "0125", "01", RoleNMEA, "Quectel EC25/EG25"},
		{"ttyUSB2", "2c7c", "0125", "02", RoleAT, "Quectel EC25/EG25"},
		{"ttyUSB3", "2c7c", "0125", "03", RoleAT2, "Quectel EC25/EG25"},
		{"ttyUSB4", "1199", "9071", "00", RoleDiag, "Sierra Wireless MC7455/EM7455"},
		{"ttyUSB5", "1199", "9071", "02", RoleNMEA, "Sierra Wireless MC7455/EM7455"},
		{"ttyUSB6", "1199", "9071", "03", RoleAT, "Sierra Wireless MC7455/EM7455"},
		{"ttyUSB7", "1bc7", "1201", "00", RoleDiag, "Telit LE910Cx"},
		{"ttyUSB8", "1bc7", "1201", "03", RoleNMEA, "Telit LE910Cx"},
		{"ttyUSB9", "1bc7", "1201", "04", RoleAT, "Telit LE910Cx"},
		{"ttyUSB10", "1bc7", "1201", "05", RoleAT2, "Telit LE910Cx"},
		{"ttyACM0", "1546", "01a8", "00", "", ""}, // a receiver, not a modem
		{"ttyS0", "", "", "", "", ""},             // an on-board UART: no USB
		{"ttyUSB99", "", "", "", "", ""},          // not in sysfs
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := PortInfo{Name: "/dev/" + tc.name}
			identify(root, &p)
			if p.VID != tc.vid || p.PID != tc.pid || p.Interface != tc.iface || p.Role != tc.role || p.Modem != tc.modem {
				t.Errorf("got %s:%s if %q role %q modem %q, want %s:%s if %q role %q modem %q", p.VID, p.PID, p.Interface,
					p.Role, p.Modem, tc.vid, tc.pid, tc.iface, tc.role, tc.modem)
			}
			if p.USB != (tc.vid != "") {
				t.Errorf("USB %v", p.USB)
			}
		})
	}
}

// TestModemLayouts: every layout names one NMEA and one AT port, and no model
// is listed twice.
func TestModemLayouts(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range modemLayouts {
		id := m.vid + ":" + m.pid
		if seen[id] {
			t.Errorf("%s listed twice", id)
		}
		seen[id] = true
		n := map[string]int{}
		for _, r := range m.roles {
			n[r]++
		}
		if n[RoleNMEA] != 1 || n[RoleAT] != 1 {
			t.Errorf("%s %s: roles %v, want one NMEA and one AT port", id, m.model, m.roles)
		}
	}
}
