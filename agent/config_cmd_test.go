package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `gps-agent config check` decides whether the service starts (systemd's ExecCondition=, the deb postinst, the
// OpenWrt init script): 0 start; 1 skip quietly, the config is not filled in yet; 255 fail loudly, it is filled
// in but wrong. Whatever quotes TOML allows.
func TestConfigCheck(t *testing.T) {
	const rest = "[receiver]\ndevice = \"/dev/gps0\"\n[kinesis]\nstream = \"fleet-positions\"\nregion = \"eu-west-1\"\n"
	example, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		file   string // "" for no file
		env    string // GPS_AGENT_TRUCK_ID, when set
		code   int
		stdout string // what the output must contain
		stderr string
	}{
		{name: "double-quoted truck_id", file: "truck_id = \"TRK-0042\"\n" + rest, code: 0, stdout: "truck TRK-0042"},
		{name: "single-quoted truck_id", file: "truck_id = 'TRK-0042'\n" + rest, code: 0, stdout: "truck TRK-0042"},
		{name: "multi-line literal truck_id", file: "truck_id = '''TRK-0042'''\n" + rest, code: 0, stdout: "truck TRK-0042"},
		{name: "truck_id from the environment", file: rest, env: "TRK-ENV", code: 0, stdout: "truck TRK-ENV"},
		{name: "the packaged config", file: string(example), code: 1, stderr: "truck_id is not set"},
		{name: "missing truck_id", file: rest, code: 1, stderr: "truck_id is not set"},
		{name: "commented truck_id", file: "#truck_id = \"TRK-0042\"\n" + rest, code: 1, stderr: "truck_id is not set"},
		{name: "empty truck_id", file: "truck_id = ''\n" + rest, code: 1, stderr: "truck_id is not set"},
		{name: "no file", code: 1, stderr: "no config file"},
		{name: "bad key", file: "truck_id = 'TRK-0042'\n" + rest + "colour = \"red\"\n", code: 255, stderr: "config.toml:7: kinesis.colour: unknown key"},
		{name: "bad key, truck_id missing", file: rest + "colour = \"red\"\n", code: 255, stderr: "config.toml:6: kinesis.colour: unknown key"},
		{name: "bad value", file: "truck_id = 'TRK 42'\n" + rest, code: 255, stderr: `config.toml:1: truck_id: "TRK 42"`},
		{name: "missing stream", file: "truck_id = 'TRK-0042'\n[receiver]\ndevice = \"/dev/gps0\"\n", code: 255, stderr: "kinesis.stream: required"},
		{name: "syntax", file: "truck_id = 'TRK-0042\n" + rest, code: 255, stderr: "config.toml:1:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("GPS_AGENT_TRUCK_ID", tc.env)
			}
			path := filepath.Join(t.TempDir(), "config.toml")
			if tc.file != "" {
				writeFile(t, path, tc.file)
			}
			code, out, errOut := runCLI(t, nil, "config", "check", "--config", path)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, want %d; stdout %q, want %q; stderr %q, want %q", code, tc.code, out, tc.stdout, errOut, tc.stderr)
			}
			if tc.code == 255 && !strings.Contains(errOut, "the service fails until") {
				t.Errorf("stderr %q does not say the service fails", errOut)
			}
		})
	}
}

func TestConfigUsage(t *testing.T) {
	for _, args := range [][]string{{"config"}, {"config", "show"}, {"config", "check", "extra"}, {"config", "--config", "x", "check", "--bogus"}} {
		if code, _, errOut := runCLI(t, nil, args...); code != 2 || !strings.Contains(errOut, "usage: gps-agent config check") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
		}
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	writeFile(t, path, "truck_id = 'T'\n[receiver]\ndevice = \"/dev/gps0\"\n[kinesis]\nstream = \"s\"\nregion = \"eu-west-1\"\n")
	if code, _, errOut := runCLI(t, nil, "config", "--config", path, "check"); code != 0 {
		t.Errorf("flags before check: exit %d: %s", code, errOut)
	}
}
