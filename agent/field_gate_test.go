package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	postinstFile = "../cross/deb/postinst"
	initFile     = "../cross/openwrt/gps-agent.init"
	packagedConf = "/etc/gps-agent/config.toml"
)

// What a service manager does with a config.
const (
	gateStart = "start"
	gateSkip  = "skip" // quietly: not filled in yet
	gateFail  = "fail" // loudly: filled in but wrong
)

// gateConfigs are configs and what every gate (the unit's ExecCondition=, the deb postinst, the OpenWrt init
// script) must do with them, whatever quotes TOML allows.
func gateConfigs(t *testing.T) map[string]struct{ doc, want string } {
	t.Helper()
	const rest = "[receiver]\ndevice = \"/dev/gps0\"\n[kinesis]\nstream = \"fleet-positions\"\nregion = \"eu-west-1\"\n"
	example, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]struct{ doc, want string }{
		"double-quoted truck_id": {"truck_id = \"TRK-0042\"\n" + rest, gateStart},
		"single-quoted truck_id": {"truck_id = 'TRK-0042'\n" + rest, gateStart},
		"the packaged config":    {string(example), gateSkip},
		"truck_id only":          {"truck_id = \"TRK-0042\"\n", gateFail},
		"misspelt key":           {"truck_id = 'TRK-0042'\n" + rest + "[uplink]\nlingr = \"1s\"\n", gateFail},
	}
}

// gateBin is a directory with a gps-agent that is this test binary running main, first on PATH for the scripts.
func gateBin(t *testing.T) string {
	t.Helper()
	exe := testExecutable(t)
	dir := t.TempDir()
	writeScript(t, filepath.Join(dir, "gps-agent"), "#!/bin/sh\n"+execEnv+"=1 exec '"+exe+"' \"$@\"\n")
	return dir
}

func writeScript(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// gateEnv is the environment of a gate: no GPS_AGENT_* of the test's own, bin first on PATH.
func gateEnv(bin string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return append(env, "PATH="+bin+":"+os.Getenv("PATH"))
}

// The unit's ExecCondition=: exit 0 starts, 1 to 254 skip without failing the unit, 255 fails it (systemd.service).
func TestUnitExecConditionAsksTheBinary(t *testing.T) {
	bin := gateBin(t)
	cond := unitDirectives(t)["ExecCondition"]
	if len(cond) != 1 {
		t.Fatalf("ExecCondition=%v", cond)
	}
	for name, tc := range gateConfigs(t) {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "config.toml")
			writeFile(t, cfg, tc.doc)
			line := strings.ReplaceAll(cond[0], packagedConf, cfg)
			line = strings.ReplaceAll(line, "/usr/bin/gps-agent", filepath.Join(bin, "gps-agent"))
			// A plain command (TestUnitMatchesTheProgram pins it), run as systemd would, with no variable of ours.
			args := strings.Fields(line)
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env = gateEnv(bin)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			got := gateStart
			var exit *exec.ExitError
			switch {
			case errors.As(err, &exit) && exit.ExitCode() >= 1 && exit.ExitCode() <= 254:
				got = gateSkip
			case err != nil:
				got = gateFail
			}
			if got != tc.want {
				t.Fatalf("ExecCondition: %s (%v), want %s; stderr:\n%s", got, err, tc.want, stderr.String())
			}
		})
	}
}

// The deb postinst enables and starts only a complete config, says what to set for one not filled in yet, and
// shows the errors of a wrong one; it never fails the install.
func TestDebPostinstAsksTheBinary(t *testing.T) {
	bin := gateBin(t)
	log := filepath.Join(t.TempDir(), "calls")
	for _, stub := range []string{"getent", "adduser", "systemctl", "udevadm", "deb-systemd-helper", "deb-systemd-invoke"} {
		writeScript(t, filepath.Join(bin, stub), "#!/bin/sh\necho "+stub+" \"$@\" >> '"+log+"'\n")
	}
	script, err := os.ReadFile(postinstFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range gateConfigs(t) {
		t.Run(name, func(t *testing.T) {
			os.Remove(log)
			cfg := filepath.Join(t.TempDir(), "config.toml")
			writeFile(t, cfg, tc.doc)
			postinst := filepath.Join(t.TempDir(), "postinst")
			writeScript(t, postinst, strings.ReplaceAll(string(script), packagedConf, cfg))
			cmd := exec.Command("/bin/sh", postinst, "configure")
			cmd.Env = gateEnv(bin)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("postinst: %v\n%s", err, stderr.String())
			}
			calls, _ := os.ReadFile(log)
			enabled := strings.Contains(string(calls), "deb-systemd-helper enable gps-agent.service")
			switch {
			case enabled != (tc.want == gateStart):
				t.Errorf("enabled %v, want %s; calls:\n%s", enabled, tc.want, calls)
			case tc.want == gateSkip && !strings.Contains(stderr.String(), "set truck_id"):
				t.Errorf("stderr %q does not say to set truck_id", stderr.String())
			case tc.want == gateFail && !strings.Contains(stderr.String(), cfg+":"):
				t.Errorf("stderr %q does not show the config's errors", stderr.String())
			}
		})
	}
}

// The OpenWrt init script starts an instance only for a complete config, returns 0 without one for a config not
// filled in yet, and fails with the errors for a wrong one.
func TestOpenWrtInitAsksTheBinary(t *testing.T) {
	bin := gateBin(t)
	script, err := os.ReadFile(initFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range gateConfigs(t) {
		t.Run(name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "config.toml")
			writeFile(t, cfg, tc.doc)
			init := filepath.Join(t.TempDir(), "gps-agent.init")
			writeScript(t, init, strings.ReplaceAll(string(script), packagedConf, cfg))
			// procd and the directory set-up are stubbed: only the decision is under test.
			cmd := exec.Command("/bin/sh", "-c", `procd_open_instance() { echo instance; }
procd_set_param() { :; }
procd_close_instance() { :; }
mkdir() { :; }
chown() { :; }
. "$1"
start_service`, "sh", init)
			cmd.Env = gateEnv(bin)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			got := gateStart
			switch {
			case err != nil:
				got = gateFail
			case !strings.Contains(string(out), "instance"):
				got = gateSkip
			}
			if got != tc.want {
				t.Fatalf("start_service: %s (%v), want %s; stderr:\n%s", got, err, tc.want, stderr.String())
			}
			if tc.want == gateFail && !strings.Contains(stderr.String(), cfg+":") {
				t.Errorf("stderr %q does not show the config's errors", stderr.String())
			}
		})
	}
}
