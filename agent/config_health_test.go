package main

import (
	"strings"
	"testing"
	"time"
)

// [kinesis] health_stream and health_interval: off by default, 60s by default, from the file or the environment,
// and each bad value named with its line.
func TestConfigHealth(t *testing.T) {
	cfg, err := ParseConfig("gps.toml", []byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kinesis.HealthStream != "" || cfg.Kinesis.HealthInterval.Duration != time.Minute {
		t.Errorf("defaults: health_stream %q, health_interval %s; want off and 60s", cfg.Kinesis.HealthStream,
			cfg.Kinesis.HealthInterval)
	}
	doc := goodConfig + "health_stream = \"fleet-health\"\nhealth_interval = \"5m\"\n"
	cfg, err = ParseConfig("gps.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kinesis.HealthStream != "fleet-health" || cfg.Kinesis.HealthInterval.Duration != 5*time.Minute {
		t.Errorf("from the file: %+v", cfg.Kinesis)
	}
	env := map[string]string{"GPS_AGENT_KINESIS_HEALTH_STREAM": "health-2", "GPS_AGENT_KINESIS_HEALTH_INTERVAL": "30s"}
	if err := applyEnv(&cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if cfg.Kinesis.HealthStream != "health-2" || cfg.Kinesis.HealthInterval.Duration != 30*time.Second {
		t.Errorf("from the environment: %+v", cfg.Kinesis)
	}

	for _, tc := range []struct{ name, add, want string }{
		{"bad name", `health_stream = "fleet health"`, `gps.toml:16: kinesis.health_stream: "fleet health": a stream name has`},
		{"the positions' stream", `health_stream = "fleet-positions"`,
			`gps.toml:16: kinesis.health_stream: "fleet-positions" is also kinesis.stream`},
		{"interval too short", `health_interval = "100ms"`, `gps.toml:16: kinesis.health_interval: 100ms: use 1s to 1h`},
		{"interval too long", `health_interval = "2h"`, `gps.toml:16: kinesis.health_interval: 2h0m0s: use 1s to 1h`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("gps.toml", []byte(goodConfig+tc.add+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}
