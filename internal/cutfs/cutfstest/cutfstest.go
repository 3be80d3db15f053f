//go:build linux && (amd64 || arm64)

// Package cutfstest starts the power-cut filesystem (cmd/cutfs) for a test,
// in a process of its own, and cuts its power.
package cutfstest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/internal/cutfs"
)

// Skip skips the test where the filesystem cannot be mounted: it needs root
// (a mount without fusermount) and /dev/fuse, and is not run under qemu.
func Skip(t testing.TB) {
	t.Helper()
	switch {
	case os.Getenv("GPS_AGENT_TEST_EMULATED") != "":
		t.Skip("power-cut filesystem: not under emulation (GPS_AGENT_TEST_EMULATED is set)")
	case os.Geteuid() != 0:
		t.Skip("power-cut filesystem: mounting without fusermount needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("power-cut filesystem: no /dev/fuse (%v)", err)
	}
}

// FS is one mount of the filesystem over a backing directory. After a Cut or
// Stop, Mount mounts it again: the reboot.
type FS struct {
	t       testing.TB
	bin     string
	Backing string // the disk
	Dir     string // where it is mounted
	control string
	// ReadRate throttles reads of the next Mount (bytes/s, 0: none).
	ReadRate int64

	cmd  *exec.Cmd
	done chan error
}

// New builds cmd/cutfs and mounts an empty disk. It skips the test where the
// filesystem cannot run (Skip). Cleanup unmounts and stops the process.
func New(t testing.TB) *FS {
	t.Helper()
	Skip(t)
	tmp := t.TempDir()
	ctl, err := os.MkdirTemp("", "cutfs") // short: a unix socket path has a limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(ctl) })
	f := &FS{
		t:       t,
		bin:     filepath.Join(tmp, "cutfs"),
		Backing: filepath.Join(tmp, "disk"),
		Dir:     filepath.Join(tmp, "mnt"),
		control: filepath.Join(ctl, "ctl"),
	}
	build := exec.Command("go", "build", "-o", f.bin, "github.com/fleetedge/gps-agent/internal/cutfs/cmd/cutfs")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cutfs: %v\n%s", err, out)
	}
	for _, d := range []string{f.Backing, f.Dir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(f.cleanup)
	f.Mount()
	return f
}

// Mount starts the filesystem over the disk as the last cut left it.
func (f *FS) Mount() {
	f.t.Helper()
	if f.cmd != nil {
		f.t.Fatal("cutfs: already mounted")
	}
	args := []string{"--backing", f.Backing, "--mount", f.Dir, "--control", f.control}
	if f.ReadRate > 0 {
		args = append(args, "--read-rate", fmt.Sprint(f.ReadRate))
	}
	cmd := exec.Command(f.bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		f.t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	f.cmd, f.done = cmd, make(chan error, 1)
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
		f.done <- cmd.Wait()
	}()
	select {
	case ok := <-ready:
		if !ok {
			f.wait()
			f.t.Fatalf("cutfs did not start: %s", stderr.String())
		}
	case <-time.After(20 * time.Second):
		f.t.Fatalf("cutfs not ready in 20 s: %s", stderr.String())
	}
}

// Cut cuts the power: what plan keeps of the unsynced state reaches the disk,
// the rest is gone, and the mount ends. Mount again to reboot.
func (f *FS) Cut(plan cutfs.CutPlan) cutfs.CutReport {
	f.t.Helper()
	var rep cutfs.CutReport
	f.command(fmt.Sprintf("cut %d %g %g %t", plan.Seed, plan.Pages, plan.Dirs, plan.Torn), &rep)
	f.wait()
	return rep
}

// Stop makes everything durable, as a clean shutdown, and unmounts.
func (f *FS) Stop() {
	f.t.Helper()
	var s string
	f.command("stop", &s)
	f.wait()
}

// Stats returns the filesystem's counters.
func (f *FS) Stats() cutfs.Stats {
	f.t.Helper()
	var s cutfs.Stats
	f.command("stats", &s)
	return s
}

// SetReadRate throttles reads from now on (bytes/s, 0: none).
func (f *FS) SetReadRate(rate int64) {
	f.t.Helper()
	var s string
	f.command(fmt.Sprintf("rate %d", rate), &s)
}

func (f *FS) command(cmd string, reply any) {
	f.t.Helper()
	c, err := net.DialTimeout("unix", f.control, 5*time.Second)
	if err != nil {
		f.t.Fatalf("cutfs %s: %v", cmd, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	fmt.Fprintln(c, cmd)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		f.t.Fatalf("cutfs %s: %v", cmd, err)
	}
	body, ok := strings.CutPrefix(strings.TrimSpace(line), "ok ")
	if !ok {
		f.t.Fatalf("cutfs %s: %s", cmd, line)
	}
	if err := json.Unmarshal([]byte(body), reply); err != nil {
		f.t.Fatalf("cutfs %s: reply %q: %v", cmd, body, err)
	}
}

// wait waits for the process to exit after a cut or stop.
func (f *FS) wait() {
	f.t.Helper()
	if f.cmd == nil {
		return
	}
	select {
	case <-f.done:
	case <-time.After(20 * time.Second):
		f.cmd.Process.Kill()
		<-f.done
		f.t.Errorf("cutfs did not exit in 20 s")
	}
	_ = syscall.Unmount(f.Dir, syscall.MNT_DETACH) // already gone unless it died
	f.cmd = nil
}

func (f *FS) cleanup() {
	if f.cmd != nil {
		f.cmd.Process.Kill()
		<-f.done
		f.cmd = nil
	}
	_ = syscall.Unmount(f.Dir, syscall.MNT_DETACH)
}

// CutAt arms a cut at the n-th write or sync from now (or in 3 s, if they do not come), inside that operation
// (it fails, and nothing after it reaches the disk), and returns once it has
// fired: a cut in the middle of what the program was writing. The caller
// kills the program then, as the power would.
func (f *FS) CutAt(n int, plan cutfs.CutPlan) cutfs.CutReport {
	f.t.Helper()
	var rep cutfs.CutReport
	f.command(fmt.Sprintf("cutat %d %d %g %g %t", n, plan.Seed, plan.Pages, plan.Dirs, plan.Torn), &rep)
	f.wait()
	return rep
}
