package main

import (
	"slices"
	"strings"
	"testing"
)

const gpsdConfig = `truck_id = "TRK-0042"

[receiver]
gpsd = "127.0.0.1:2947"

[kinesis]
stream = "fleet-positions"
region = "eu-west-1"
`

const modemConfig = `truck_id = "TRK-0042"

[receiver]
device = "/dev/ttyUSB1"

[receiver.at]
device = "/dev/ttyUSB2"
init = ["AT+QGPS=1"]

[kinesis]
stream = "fleet-positions"
region = "eu-west-1"
`

func TestConfigGpsdAndModem(t *testing.T) {
	cfg, err := ParseConfig("gps.toml", []byte(gpsdConfig))
	if err != nil || cfg.Receiver.Gpsd != "127.0.0.1:2947" || cfg.Receiver.Device != "" {
		t.Errorf("gpsd config: %+v, %v", cfg.Receiver, err)
	}
	cfg, err = ParseConfig("gps.toml", []byte(modemConfig))
	if err != nil || cfg.Receiver.AT.Device != "/dev/ttyUSB2" || !slices.Equal(cfg.Receiver.AT.Init, []string{"AT+QGPS=1"}) {
		t.Errorf("modem config: %+v, %v", cfg.Receiver, err)
	}
	// AT commands with gpsd: gpsd holds the NMEA port, the agent starts the engine.
	cfg, err = ParseConfig("gps.toml", []byte(strings.Replace(modemConfig, `device = "/dev/ttyUSB1"`, `gpsd = "[::1]:2947"`, 1)))
	if err != nil || cfg.Receiver.Gpsd != "[::1]:2947" || cfg.Receiver.AT.Device != "/dev/ttyUSB2" {
		t.Errorf("gpsd with a modem: %+v, %v", cfg.Receiver, err)
	}
}

// Each mistake names file:line and the key.
func TestConfigGpsdAndModemErrors(t *testing.T) {
	tests := []struct {
		name, doc, from, to, want string
	}{
		{"device and gpsd", gpsdConfig, `gpsd = "127.0.0.1:2947"`, "device = \"/dev/ttyUSB0\"\ngpsd = \"127.0.0.1:2947\"",
			`gps.toml:5: receiver.gpsd: set either receiver.device (a serial port) or receiver.gpsd (gpsd's HOST:PORT), not both`},
		{"neither", gpsdConfig, `gpsd = "127.0.0.1:2947"`, ``, `gps.toml:3: receiver.device: required: the receiver's serial device`},
		{"gpsd without port", gpsdConfig, `gpsd = "127.0.0.1:2947"`, `gpsd = "localhost"`,
			`gps.toml:4: receiver.gpsd: "localhost": use HOST:PORT, for example 127.0.0.1:2947`},
		{"gpsd bad port", gpsdConfig, `gpsd = "127.0.0.1:2947"`, `gpsd = "127.0.0.1:gpsd"`,
			`gps.toml:4: receiver.gpsd: "127.0.0.1:gpsd": the port must be a number`},
		{"init without AT device", modemConfig, `device = "/dev/ttyUSB2"`, ``,
			`gps.toml:6: receiver.at.device: required with receiver.at.init`},
		{"AT device without init", modemConfig, `init = ["AT+QGPS=1"]`, ``,
			`gps.toml:6: receiver.at.init: required with receiver.at.device`},
		{"AT port is the NMEA port", modemConfig, `device = "/dev/ttyUSB2"`, `device = "/dev/ttyUSB1"`,
			`gps.toml:7: receiver.at.device: "/dev/ttyUSB1" is receiver.device`},
		{"not an AT command", modemConfig, `init = ["AT+QGPS=1"]`, `init = ["AT+QGPS=1", "QGPS=1"]`,
			`gps.toml:8: receiver.at.init: command 2 "QGPS=1": an AT command starts with AT`},
		{"line break in a command", modemConfig, `init = ["AT+QGPS=1"]`, `init = ["AT+QGPS=1\r\nATZ"]`,
			`gps.toml:8: receiver.at.init: command 1`},
		{"init not a list", modemConfig, `init = ["AT+QGPS=1"]`, `init = "AT+QGPS=1"`, `gps.toml:8: receiver.at.init:`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(tc.doc, tc.from, tc.to, 1)
			if doc == tc.doc {
				t.Fatalf("%q not found", tc.from)
			}
			_, err := ParseConfig("gps.toml", []byte(doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// GPS_AGENT_RECEIVER_AT_INIT takes a TOML array, like the file; GPS_AGENT_RECEIVER_GPSD a HOST:PORT.
func TestConfigEnvATAndGpsd(t *testing.T) {
	env := map[string]string{
		"GPS_AGENT_RECEIVER_AT_DEVICE": "/dev/ttyUSB3",
		"GPS_AGENT_RECEIVER_AT_INIT":   `["AT$GPSP=1", 'AT$GPSNMUN=2,1,1,1,1,1,1']`,
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := parseConfig("gps.toml", []byte(modemConfig), lookup)
	if err != nil || cfg.Receiver.AT.Device != "/dev/ttyUSB3" ||
		!slices.Equal(cfg.Receiver.AT.Init, []string{"AT$GPSP=1", "AT$GPSNMUN=2,1,1,1,1,1,1"}) {
		t.Errorf("AT from the environment: %+v, %v", cfg.Receiver.AT, err)
	}
	env = map[string]string{"GPS_AGENT_RECEIVER_AT_INIT": "AT+QGPS=1"}
	if _, err := parseConfig("gps.toml", []byte(modemConfig), lookup); err == nil ||
		!strings.Contains(err.Error(), `environment GPS_AGENT_RECEIVER_AT_INIT="AT+QGPS=1": not a TOML array`) {
		t.Errorf("a bare command: err %v, want one asking for a TOML array", err)
	}
	env = map[string]string{"GPS_AGENT_RECEIVER_GPSD": "127.0.0.1:2947", "GPS_AGENT_RECEIVER_DEVICE": ""}
	cfg, err = parseConfig("gps.toml", []byte(modemConfig), lookup)
	if err != nil || cfg.Receiver.Gpsd != "127.0.0.1:2947" || cfg.Receiver.Device != "" {
		t.Errorf("gpsd from the environment: %+v, %v", cfg.Receiver, err)
	}
	env = map[string]string{"GPS_AGENT_RECEIVER_GPSD": "127.0.0.1:2947"}
	if _, err := parseConfig("gps.toml", []byte(modemConfig), lookup); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("gpsd from the environment beside the file's device: err %v", err)
	}
}
