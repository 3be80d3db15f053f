package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const goodConfig = `# a gateway
truck_id = "TRK-0042"

[receiver]
device = "/dev/ttyUSB0"
baud = 4800

[buffer]
dir = "/var/lib/gps-agent"
commit_interval = "500ms"

[kinesis]
stream = "fleet-positions"
region = "eu-west-1"
endpoint = "http://127.0.0.1:4567"
`

func TestParseConfigGood(t *testing.T) {
	cfg, err := ParseConfig("gps.toml", []byte(goodConfig))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	want := DefaultConfig()
	want.TruckID = "TRK-0042"
	want.Receiver = ReceiverConfig{Device: "/dev/ttyUSB0", Baud: 4800}
	want.Buffer.CommitInterval = Duration{500 * time.Millisecond}
	want.Kinesis = KinesisConfig{Stream: "fleet-positions", Region: "eu-west-1", Endpoint: "http://127.0.0.1:4567",
		HealthInterval: Duration{time.Minute}}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config = %+v\nwant %+v", cfg, want)
	}
}

func TestParseConfigAutoBaud(t *testing.T) {
	cfg, err := ParseConfig("gps.toml", []byte(strings.Replace(goodConfig, "baud = 4800", `baud = "auto"`, 1)))
	if err != nil || cfg.Receiver.Baud != 0 || cfg.Receiver.Baud.String() != "auto" {
		t.Fatalf("baud = %v, err %v; want auto", cfg.Receiver.Baud, err)
	}
}

// A line speed reads the same quoted or not, as from the environment (GPS_AGENT_RECEIVER_BAUD=9600); "auto" and
// the words of log_level and log_format in any case, as the logger reads them.
func TestParseConfigLenientValues(t *testing.T) {
	tests := []struct {
		name, from, to string
		check          func(Config) bool
	}{
		{"quoted baud", "baud = 4800", `baud = "9600"`, func(c Config) bool { return c.Receiver.Baud == 9600 }},
		{"auto in capitals", "baud = 4800", `baud = "AUTO"`, func(c Config) bool { return c.Receiver.Baud == 0 }},
		{"log level in capitals", "# a gateway", `log_level = "INFO"`, func(c Config) bool { return c.LogLevel == "INFO" }},
		{"log level mixed case", "# a gateway", `log_level = "Debug"`, func(c Config) bool { return c.LogLevel == "Debug" }},
		{"log format in capitals", "# a gateway", `log_format = "JSON"`, func(c Config) bool { return c.LogFormat == "JSON" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig("gps.toml", []byte(strings.Replace(goodConfig, tc.from, tc.to, 1)))
			if err != nil || !tc.check(cfg) {
				t.Fatalf("%s: %+v, %v", tc.to, cfg, err)
			}
		})
	}
}

// The logger honours the level and format whatever their case.
func TestLoggerAnyCase(t *testing.T) {
	var b strings.Builder
	log := newLogger(&b, "WARN", "JSON")
	log.Info("hidden")
	log.Warn("shown")
	if out := b.String(); strings.Contains(out, "hidden") || !strings.HasPrefix(out, "{") || !strings.Contains(out, `"msg":"shown"`) {
		t.Fatalf("log output %q: want only the warning, as JSON", out)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig("min.toml", []byte("truck_id = \"T1\"\n[receiver]\ndevice = \"/dev/gps0\"\n[kinesis]\nstream = \"s\"\nregion = \"us-east-1\"\n"))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if cfg.Receiver.Baud != 9600 || cfg.Buffer.Dir != "/var/lib/gps-agent" || cfg.Buffer.CommitInterval.Duration != time.Second {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

// Every bad config names the file, the line and the key, so a technician can go straight to it.
func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string // applied to goodConfig
		want    string
	}{
		{"unknown top-level key", [2]string{"# a gateway", "truk_id = \"x\""}, "gps.toml:1: truk_id: unknown key"},
		{"unknown key in table", [2]string{"baud = 4800", "baud = 4800\nparity = \"none\""}, "gps.toml:7: receiver.parity: unknown key"},
		{"unknown table", [2]string{"[buffer]", "[bufer]"}, "gps.toml:8: bufer: unknown key"},
		{"baud wrong word", [2]string{"baud = 4800", "baud = \"fast\""}, "gps.toml:6: receiver.baud: \"fast\": not a line speed: use a number such as 9600, or \"auto\""},
		{"baud quoted out of range", [2]string{"baud = 4800", "baud = \"-9600\""}, "gps.toml:6: receiver.baud: -9600: use the receiver's line speed"},
		{"log level word", [2]string{"# a gateway", "log_level = \"verbose\""}, "gps.toml:1: log_level: \"verbose\": use debug, info, warn or error"},
		{"log format word", [2]string{"# a gateway", "log_format = \"xml\""}, "gps.toml:1: log_format: \"xml\": use text or json"},
		{"baud wrong type", [2]string{"baud = 4800", "baud = true"}, "gps.toml:6: receiver.baud:"},
		{"baud negative", [2]string{"baud = 4800", "baud = -1"}, "gps.toml:6: receiver.baud: -1: use the receiver's line speed"},
		{"bad duration", [2]string{`commit_interval = "500ms"`, `commit_interval = "soon"`}, "gps.toml:10: buffer.commit_interval:"},
		{"commit interval too long", [2]string{`commit_interval = "500ms"`, `commit_interval = "2h"`}, "gps.toml:10: buffer.commit_interval: 2h0m0s: use 10ms to 1m"},
		{"truck id missing", [2]string{`truck_id = "TRK-0042"`, ``}, "gps.toml: truck_id: required"},
		{"truck id bad chars", [2]string{`truck_id = "TRK-0042"`, `truck_id = "TRK 42/a"`}, "gps.toml:2: truck_id: \"TRK 42/a\": use 1 to 256 letters"},
		{"stream name", [2]string{`stream = "fleet-positions"`, `stream = "fleet positions"`}, "gps.toml:13: kinesis.stream: \"fleet positions\": a stream name"},
		{"region", [2]string{`region = "eu-west-1"`, `region = "Ireland"`}, "gps.toml:14: kinesis.region: \"Ireland\": not an AWS region"},
		{"endpoint", [2]string{`endpoint = "http://127.0.0.1:4567"`, `endpoint = "127.0.0.1:4567"`}, "gps.toml:15: kinesis.endpoint: \"127.0.0.1:4567\": use a URL"},
		{"syntax", [2]string{`baud = 4800`, `baud = `}, "gps.toml:6:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(goodConfig, tt.replace[0], tt.replace[1], 1)
			if doc == goodConfig {
				t.Fatalf("replacement %q not found", tt.replace[0])
			}
			_, err := ParseConfig("gps.toml", []byte(doc))
			if err == nil {
				t.Fatalf("no error for:\n%s", doc)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseConfigReportsEveryBadKey(t *testing.T) {
	doc := strings.NewReplacer(`baud = 4800`, `baud = -5`, `region = "eu-west-1"`, `region = ""`).Replace(goodConfig)
	_, err := ParseConfig("gps.toml", []byte(doc))
	if err == nil || !strings.Contains(err.Error(), "receiver.baud") || !strings.Contains(err.Error(), "kinesis.region") {
		t.Fatalf("error = %v, want both receiver.baud and kinesis.region", err)
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "nope.toml"))
	if err == nil || !strings.Contains(err.Error(), "read config:") || !strings.Contains(err.Error(), "nope.toml") {
		t.Fatalf("error = %v", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{
		"GPS_AGENT_TRUCK_ID":               "TRK-ENV",
		"GPS_AGENT_RECEIVER_BAUD":          "auto",
		"GPS_AGENT_BUFFER_COMMIT_INTERVAL": "2s",
		"GPS_AGENT_FILTER_MIN_DISTANCE_M":  "12.5",
		"GPS_AGENT_KINESIS_STREAM":         "other-stream",
	}
	cfg, err := parseConfig("gps.toml", []byte(goodConfig), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TruckID != "TRK-ENV" || cfg.Receiver.Baud != 0 || cfg.Buffer.CommitInterval.Duration != 2*time.Second ||
		cfg.Filter.MinDistanceM != 12.5 || cfg.Kinesis.Stream != "other-stream" || cfg.Receiver.Device != "/dev/ttyUSB0" {
		t.Errorf("overrides not applied: %+v", cfg)
	}
	env = map[string]string{"GPS_AGENT_RECEIVER_BAUD": "fast"}
	_, err = parseConfig("gps.toml", []byte(goodConfig), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil || !strings.Contains(err.Error(), `environment GPS_AGENT_RECEIVER_BAUD="fast"`) {
		t.Errorf("error = %v", err)
	}
	env = map[string]string{"GPS_AGENT_TRUCK_ID": "bad id"}
	_, err = parseConfig("gps.toml", []byte(goodConfig), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil || !strings.Contains(err.Error(), "truck_id") {
		t.Errorf("error = %v", err)
	}
}
