package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// check runs outside the service's sandbox: it says when the installed unit would refuse the receiver (EPERM),
// reading the unit and its drop-ins as systemd does.
func TestCheckServiceDevice(t *testing.T) {
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/dev/ttyS0"); err != nil {
		t.Skip("no /dev/ttyS0 to stand for a serial port")
	}
	tests := []struct {
		name    string
		device  string
		dropIns map[string]string // "etc/NAME" or "lib/NAME" -> content
		want    string            // "" for no verdict
		detail  string
	}{
		{name: "no unit installed", device: "/dev/ttyS0"},
		{name: "serial port allowed", device: "/dev/ttyS0", dropIns: map[string]string{}, want: pass, detail: "DeviceAllow=char-ttyS rw"},
		{name: "other device refused", device: "/dev/null", dropIns: map[string]string{}, want: warn, detail: "does not allow /dev/null (driver mem)"},
		{name: "drop-in allows it", device: "/dev/null", want: pass, detail: "DeviceAllow=/dev/null rw",
			dropIns: map[string]string{"etc/replay.conf": "[Service]\nDeviceAllow=/dev/null rw\n"}},
		{name: "drop-in clears the list", device: "/dev/ttyS0", want: warn, detail: "does not allow /dev/ttyS0 (driver ttyS)",
			dropIns: map[string]string{"lib/clear.conf": "[Service]\nDeviceAllow=\n"}},
		{name: "higher drop-in hides a lower one", device: "/dev/ttyS0", want: pass, detail: "char-ttyS",
			dropIns: map[string]string{"lib/x.conf": "[Service]\nDeviceAllow=\n", "etc/x.conf": "[Service]\nNice=5\n"}},
		{name: "policy opened", device: "/dev/null", want: pass, detail: "DevicePolicy=auto",
			dropIns: map[string]string{"etc/open.conf": "[Service]\nDevicePolicy=auto\nDeviceAllow=\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dirs := []string{filepath.Join(root, "etc"), filepath.Join(root, "lib")}
			if tc.dropIns != nil {
				os.MkdirAll(dirs[1], 0o755)
				writeFile(t, filepath.Join(dirs[1], unitName), string(unit))
			}
			for name, content := range tc.dropIns {
				dir, base, _ := strings.Cut(name, "/")
				d := filepath.Join(root, dir, unitName+".d")
				os.MkdirAll(d, 0o755)
				writeFile(t, filepath.Join(d, base), content)
			}
			v, ok := checkServiceDevice(tc.device, dirs)
			if tc.want == "" {
				if ok {
					t.Fatalf("a verdict without a unit: %+v", v)
				}
				return
			}
			if !ok || v.Result != tc.want || !strings.Contains(v.Detail, tc.detail) {
				t.Fatalf("verdict %+v (%v), want %s with %q", v, ok, tc.want, tc.detail)
			}
			if v.Result == warn && !strings.Contains(v.Hint, "sudo systemctl edit gps-agent") {
				t.Errorf("hint %q names no drop-in", v.Hint)
			}
		})
	}
}
