package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A permission error opening the receiver names the drop-in that fixes it: the device allow-list for EPERM (the
// unit's DevicePolicy), the device's group for EACCES; by the real device a symlink such as /dev/gps0 points to.
func TestReceiverPermissionHint(t *testing.T) {
	link := filepath.Join(t.TempDir(), "gps0")
	if err := os.Symlink("/dev/null", link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
		want []string // "" for no hint
	}{
		{"device cgroup", fmt.Errorf("open receiver %s: %w", link, syscall.EPERM),
			[]string{"sudo systemctl edit gps-agent", "[Service]", "DeviceAllow=char-mem rw", "DeviceAllow=/dev/null rw", "sudo systemctl restart gps-agent"}},
		{"file mode", fmt.Errorf("open receiver %s: %w", link, syscall.EACCES),
			[]string{"sudo systemctl edit gps-agent", "SupplementaryGroups=root", "/dev/null"}},
		{"missing device", fmt.Errorf("open receiver %s: %w", link, syscall.ENOENT), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			log := receiverLog(slog.New(slog.NewTextHandler(&out, nil)), link).With("device", link)
			log.Warn("receiver unavailable, retrying", "err", tc.err)
			got := out.String()
			if tc.want == nil {
				if strings.Contains(got, "hint=") {
					t.Errorf("a hint for %v: %s", tc.err, got)
				}
				return
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("log %q, want it to contain %q", got, w)
				}
			}
		})
	}
}

// The daemon's receiver log carries the hint: a device it may not open (an immutable file gives EPERM, as the
// device cgroup does) is logged with the drop-in to add.
func TestRunLogsReceiverPermissionHint(t *testing.T) {
	device := filepath.Join(t.TempDir(), "ttymxc0")
	writeFile(t, device, "")
	if out, err := exec.Command("chattr", "+i", device).CombinedOutput(); err != nil {
		t.Skipf("chattr +i (EPERM on open for writing): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", device).Run() })
	if f, err := os.OpenFile(device, os.O_RDWR, 0); err == nil {
		f.Close()
		t.Skip("an immutable file opens for writing here")
	}
	agent := startAgent(t, "run", "--config", writeConfig(t, device, "http://127.0.0.1:9", "s"))
	agent.waitLog(t, "receiver unavailable")
	agent.stop(t)
	if out := agent.stderr.String(); !strings.Contains(out, "DeviceAllow="+device+" rw") || !strings.Contains(out, "systemctl edit gps-agent") {
		t.Errorf("no drop-in hint in the log:\n%s", out)
	}
}
