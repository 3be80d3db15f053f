package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// A broken config: check names the file, line and key, skips what depends on it, and exits 1.
func TestCheckBrokenConfig(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // each must appear on a FAIL config line
	}{
		{name: "unknown key", doc: "truck_id = \"T1\"\n[receiver]\ndevice = \"/dev/gps0\"\nbaudrate = 9600\n[kinesis]\nstream = \"s\"\nregion = \"eu-west-1\"\n",
			want: []string{"config.toml:4: receiver.baudrate: unknown key"}},
		{name: "bad value", doc: "truck_id = \"T1\"\n[receiver]\ndevice = \"/dev/gps0\"\nbaud = -1\n[kinesis]\nstream = \"s\"\nregion = \"eu-west-1\"\n",
			want: []string{"config.toml:4: receiver.baud: -1"}},
		{name: "two bad values", doc: "truck_id = \"T 1\"\n[receiver]\ndevice = \"/dev/gps0\"\n[kinesis]\nstream = \"s\"\nregion = \"Europe\"\n",
			want: []string{"config.toml:1: truck_id:", "config.toml:6: kinesis.region:"}},
		{name: "bad duration", doc: "truck_id = \"T1\"\n[receiver]\ndevice = \"/dev/gps0\"\n[buffer]\ncommit_interval = \"soon\"\n[kinesis]\nstream = \"s\"\nregion = \"eu-west-1\"\n",
			want: []string{"config.toml:5:", "buffer.commit_interval"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			writeFile(t, path, tc.doc)
			code, out, v := checkOutput(t, path)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			var fails []string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "FAIL  config") {
					fails = append(fails, l)
				}
			}
			for _, w := range tc.want {
				found := false
				for _, l := range fails {
					found = found || strings.Contains(l, w)
				}
				if !found {
					t.Errorf("no FAIL config line with %q:\n%s", w, out)
				}
			}
			wantVerdicts(t, out, v, map[string]string{"receiver": skip, "stream": skip, "credentials": skip})

			code, js, _ := runCLI(t, nil, "check", "--config", path, "--json")
			var vs []verdict
			if err := json.Unmarshal([]byte(js), &vs); err != nil || code != 1 || vs[0].Result != fail || vs[0].Check != "config" {
				t.Errorf("check --json: exit %d, %v, %+v", code, err, vs)
			}
		})
	}
}

func TestCheckReceiverWithoutDaemon(t *testing.T) {
	f := newFeeder(t, 10)
	tests := []struct {
		name   string
		device string
		feed   bool
		want   string
		detail string
	}{
		{name: "sends fixes", device: f.path, feed: true, want: pass, detail: "NMEA at 9600 baud, fix quality"},
		{name: "silent", device: f.path, want: fail, detail: "no NMEA at 9600 baud"},
		{name: "missing device", device: filepath.Join(t.TempDir(), "ttyUSB7"), want: fail, detail: "ttyUSB7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.feed {
				f.start()
				defer f.pause()
			}
			cfg := DefaultConfig()
			cfg.Receiver.Device = tc.device
			rx, clock := checkReceiver(t.Context(), cfg, 1500*time.Millisecond)
			if rx.Result != tc.want || !strings.Contains(rx.Detail, tc.detail) {
				t.Fatalf("receiver verdict %+v, want %s with %q", rx, tc.want, tc.detail)
			}
			if tc.want == pass && clock.Result == skip {
				t.Errorf("clock verdict %+v after a fix", clock)
			}
		})
	}
}

func TestCheckClockOffset(t *testing.T) {
	tests := []struct {
		name  string
		off   time.Duration
		known bool
		want  string
	}{
		{name: "in step", off: 300 * time.Millisecond, known: true, want: pass},
		{name: "behind", off: -3 * time.Second, known: true, want: warn},
		{name: "ahead", off: time.Hour, known: true, want: warn},
		{name: "no fix", want: warn},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if v := checkClockOffset(tc.off, tc.known); v.Result != tc.want {
				t.Fatalf("%+v, want %s", v, tc.want)
			}
		})
	}
}

func TestCredentialSourceNeverShowsSecrets(t *testing.T) {
	tests := []struct {
		name, source, want string
	}{
		{name: "env", source: "EnvConfigCredentials", want: "the environment (AWS_ACCESS_KEY_ID)"},
		{name: "shared file", source: "SharedConfigCredentials: /etc/gps-agent/credentials", want: "the shared credentials file: /etc/gps-agent/credentials"},
		{name: "iot", source: "IoTCredentialsProvider", want: "AWS IoT Core (the thing certificate)"},
		{name: "other", source: "SSOProvider", want: "SSOProvider"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := credentialSource(aws.Credentials{AccessKeyID: "AKIASECRET", SecretAccessKey: "s3cr3t", Source: tc.source})
			if got != tc.want || strings.Contains(got, "SECRET") || strings.Contains(got, "s3cr3t") {
				t.Fatalf("credentialSource = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckBufferDir(t *testing.T) {
	ro := filepath.Join(t.TempDir(), "ro")
	writeFile(t, ro, "") // a file, so nothing can be created "inside" it
	tests := []struct {
		name string
		dir  string
		want string
	}{
		{name: "writable", dir: t.TempDir(), want: pass},
		{name: "created on start", dir: filepath.Join(t.TempDir(), "state"), want: pass},
		{name: "not a directory", dir: ro, want: fail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Buffer.Dir = tc.dir
			cfg.Buffer.MaxBytes = 1 << 20
			if v := checkBufferDir(cfg, false); v.Result != tc.want {
				t.Fatalf("%+v, want %s", v, tc.want)
			}
		})
	}
}
