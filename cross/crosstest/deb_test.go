package crosstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// debTestEnv opts in to TestDebInstall outside CI.
const debTestEnv = "GPS_AGENT_DEB_TEST"

// TestDebInstall installs the amd64 .deb on this machine with dpkg, checks what it put where, and purges it.
// It changes the machine, so it runs only as root on Debian, in CI (CI set, as .ci/run does) or when
// GPS_AGENT_DEB_TEST=1, and never over an installed gps-agent. The purge runs even when a check fails.
func TestDebInstall(t *testing.T) {
	needSlow(t)
	switch {
	case runtime.GOOS != "linux" || runtime.GOARCH != "amd64":
		t.Skip("installs the amd64 .deb")
	case os.Getuid() != 0:
		t.Skip("needs root to install a package")
	case os.Getenv("CI") == "" && os.Getenv(debTestEnv) != "1":
		t.Skipf("installs a package on this machine: runs in CI, or with %s=1", debTestEnv)
	}
	if _, err := os.Stat("/etc/debian_version"); err != nil {
		t.Skip("not Debian")
	}
	if out, _, err := tryRun(t, time.Minute, "", nil, nil, "dpkg-query", "-W", "-f=${Status}", "gps-agent"); err == nil && strings.Contains(string(out), "installed") {
		t.Skip("gps-agent is already installed here: not touching it")
	}
	userExisted := exec.Command("getent", "passwd", "gps-agent").Run() == nil

	dist := build(t, "amd64")
	pkg(t, dist, "amd64")
	deb := filepath.Join(dist, "gps-agent_"+pkgVersion(t)+"_amd64.deb")

	// Registered before the install, so a failed check or a half-done install still leaves the machine as it was.
	t.Cleanup(func() {
		if out, errOut, err := tryRun(t, 2*time.Minute, "", nil, nil, "dpkg", "--purge", "gps-agent"); err != nil {
			t.Errorf("cleanup: dpkg --purge: %v\n%s%s", err, out, errOut)
		}
		if !userExisted {
			// Debian policy keeps a package's system user on purge; this test made it, so it removes it.
			_, _, _ = tryRun(t, time.Minute, "", nil, nil, "userdel", "gps-agent")
			_, _, _ = tryRun(t, time.Minute, "", nil, nil, "groupdel", "gps-agent")
		}
	})

	_, installErr, err := tryRun(t, 2*time.Minute, "", []string{"DEBIAN_FRONTEND=noninteractive"}, nil, "dpkg", "-i", deb)
	if err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, installErr)
	}
	if !strings.Contains(string(installErr), "set truck_id") {
		t.Errorf("install did not say the service waits for truck_id; stderr:\n%s", installErr)
	}

	for _, f := range []string{
		"/usr/bin/gps-agent", "/lib/systemd/system/gps-agent.service", "/lib/udev/rules.d/99-gps-agent.rules",
		"/etc/gps-agent/config.toml", "/usr/share/doc/gps-agent/copyright",
	} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("installed files: %v", err)
		}
	}
	if _, err := os.Lstat("/etc/systemd/system/multi-user.target.wants/gps-agent.service"); err == nil {
		t.Error("service enabled on install although truck_id is unset")
	}
	if err := exec.Command("getent", "passwd", "gps-agent").Run(); err != nil {
		t.Errorf("user gps-agent not created: %v", err)
	}
	if groups, err := exec.Command("id", "-nG", "gps-agent").Output(); err != nil || !slices.Contains(strings.Fields(string(groups)), "dialout") {
		t.Errorf("gps-agent not in dialout: %q %v", groups, err)
	}

	want := "gps-agent " + testVersion + " (commit " + testCommit + ")\n"
	if got := string(run(t, time.Minute, "", nil, "/usr/bin/gps-agent", "version")); got != want {
		t.Errorf("installed version = %q, want %q", got, want)
	}
	log := filepath.Join(repoRoot(t), "nmea", "testdata", "hemi.log")
	records := run(t, time.Minute, "", nil, "/usr/bin/gps-agent", "decode", "--truck-id", "TRK-DEB", log)
	if n := strings.Count(string(records), "\n"); n == 0 || !strings.Contains(string(records), `"truck_id":"TRK-DEB"`) {
		t.Errorf("installed decode of %s: %d records:\n%.300s", log, n, records)
	}

	checkInstalled(t)

	out, errOut, err := tryRun(t, 2*time.Minute, "", nil, nil, "dpkg", "--purge", "gps-agent")
	if err != nil {
		t.Fatalf("dpkg --purge: %v\n%s%s", err, out, errOut)
	}
	for _, f := range []string{
		"/usr/bin/gps-agent", "/lib/systemd/system/gps-agent.service", "/lib/udev/rules.d/99-gps-agent.rules",
		"/etc/gps-agent", "/var/lib/gps-agent", "/usr/share/doc/gps-agent", "/etc/systemd/system/gps-agent.service",
	} {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("left after purge: %s", f)
		}
	}
}

// checkInstalled runs the installed `gps-agent check` as a technician would after installing: against local
// Kinesis (kinesis-mock on 127.0.0.1) and a simulated receiver on a pseudo-terminal. Every verdict must pass.
func checkInstalled(t *testing.T) {
	t.Helper()
	const stream = "deb-check"
	k := uplinktest.StartKinesisMock(t, stream, 1)
	master, device, closePTY, err := nmea.OpenPTY("")
	if err != nil {
		t.Fatal(err)
	}
	defer closePTY()
	ctx, stop := context.WithCancel(context.Background())
	simDone := make(chan struct{})
	go func() {
		defer close(simDone)
		sim := nmea.Simulator{Rate: 5}
		sim.Run(ctx, master)
	}()
	defer func() { stop(); <-simDone }()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	conf := fmt.Sprintf("truck_id = \"TRK-DEB\"\nstatus_socket = %q\n[receiver]\ndevice = %q\n[buffer]\ndir = %q\n"+
		"[kinesis]\nstream = %q\nregion = \"us-east-1\"\nendpoint = %q\n",
		filepath.Join(dir, "agent.sock"), device, filepath.Join(dir, "state"), stream, k.Endpoint)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_CONFIG_FILE=/dev/null"}
	out, errOut, err := tryRun(t, 2*time.Minute, "", env, nil, "/usr/bin/gps-agent", "check", "--config", cfg)
	if err != nil {
		t.Fatalf("installed gps-agent check: %v\n%s%s", err, out, errOut)
	}
	for _, want := range []string{"config", "receiver", "buffer", "credentials", "stream"} {
		if !regexp.MustCompile(`(?m)^PASS\s+` + want + `\b`).Match(out) {
			t.Errorf("check did not pass %s:\n%s%s", want, out, errOut)
		}
	}
	t.Logf("installed gps-agent check:\n%s", out)
}
