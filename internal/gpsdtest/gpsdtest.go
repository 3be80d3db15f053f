// Package gpsdtest runs a real gpsd (Debian's, installed by `make deps`) for tests: in the foreground, on a
// device the test made (a simulated receiver's pty), listening on 127.0.0.1 only, stopped by its pid when the
// test ends. Tests only; the agent never starts gpsd.
package gpsdtest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Gpsd is a gpsd the test started.
type Gpsd struct {
	Addr string // 127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns gpsd's path, or skips t where gpsd is not installed or the tests run under qemu
// (GPS_AGENT_TEST_EMULATED: gpsd is a host binary).
func Binary(t testing.TB) string {
	t.Helper()
	if q := os.Getenv("GPS_AGENT_TEST_EMULATED"); q != "" {
		t.Skipf("under %s: gpsd is a host binary", q)
	}
	if bin, err := exec.LookPath("gpsd"); err == nil {
		return bin
	}
	if _, err := os.Stat("/usr/sbin/gpsd"); err == nil { // sbin is not in every PATH
		return "/usr/sbin/gpsd"
	}
	t.Skip("gpsd is not installed (make deps installs Debian's)")
	return ""
}

// FreePort returns a 127.0.0.1 port nobody listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs gpsd on device with port on 127.0.0.1 (no -G: loopback only), read-only on the device (-b: it sends
// the receiver nothing), not waiting for a client to open it (-n), with its control socket in a temporary
// directory (-F). It returns once gpsd accepts connections; t's cleanup stops it.
func Start(t testing.TB, port int, device string) *Gpsd {
	t.Helper()
	bin := Binary(t)
	sock := filepath.Join(t.TempDir(), "gpsd.sock")
	cmd := exec.Command(bin, "-N", "-n", "-b", "-S", strconv.Itoa(port), "-F", sock, device)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gpsd: %v", err)
	}
	g := &Gpsd{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(g.done) }()
	t.Cleanup(g.Stop)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(15 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", g.Addr, time.Second); err == nil {
			c.Close()
			return g
		}
		select {
		case <-g.done:
			t.Fatalf("gpsd exited: %v", cmd.ProcessState)
		case <-deadline:
			t.Fatal("gpsd does not accept connections after 15 s")
		case <-tick.C: // nothing tells when gpsd listens: poll its port
		}
	}
}

// Stop ends gpsd by its pid (SIGTERM, SIGKILL after 10 s) and waits for it.
func (g *Gpsd) Stop() {
	select {
	case <-g.done:
		return
	default:
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		g.cmd.Process.Kill()
		<-g.done
	}
}
