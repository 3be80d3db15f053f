package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Config is the agent's configuration, read from a TOML file. Unknown keys are errors.
type Config struct {
	// TruckID names the vehicle: the Kinesis partition key and the record's truck_id. Required.
	// At most 256 characters (the Kinesis partition key limit) of letters, digits and "._:-".
	TruckID string `toml:"truck_id"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `toml:"log_level"`

	Receiver ReceiverConfig `toml:"receiver"`
	Filter   FilterConfig   `toml:"filter"`
	Buffer   BufferConfig   `toml:"buffer"`
	Kinesis  KinesisConfig  `toml:"kinesis"`
}

// ReceiverConfig names the serial device the GPS receiver is on.
type ReceiverConfig struct {
	// Device is the serial device path, for example /dev/ttyUSB0 or a udev symlink such as /dev/gps0. Required.
	Device string `toml:"device"`
	// Baud is the line speed. Default 9600: the most common rate of USB GNSS receivers (NMEA 0183 says 4800,
	// which older Garmin units still use).
	Baud int `toml:"baud"`
}

// BufferConfig places and bounds the durable buffer.
type BufferConfig struct {
	// Dir holds the buffer database. Default /var/lib/gps-agent (systemd's StateDirectory).
	Dir string `toml:"dir"`
	// CommitInterval is how often the in-memory tail is committed to disk. It is the loss window on a power cut
	// or kill -9, traded against flash writes. Default 1s.
	CommitInterval Duration `toml:"commit_interval"`
}

// KinesisConfig names the stream records go to.
type KinesisConfig struct {
	// Stream is the Kinesis data stream name. Required.
	Stream string `toml:"stream"`
	// Region is the AWS region of the stream, for example eu-west-1. Required.
	Region string `toml:"region"`
	// Endpoint overrides the Kinesis endpoint, for local Kinesis (http://127.0.0.1:4567). Optional.
	Endpoint string `toml:"endpoint"`
}

// Duration is a time.Duration written as a string in TOML ("1s", "500ms").
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (like \"1s\" or \"500ms\"): %q", b)
	}
	d.Duration = v
	return nil
}

// DefaultConfig returns the configuration every file starts from.
func DefaultConfig() Config {
	return Config{
		LogLevel: "info",
		Receiver: ReceiverConfig{Baud: 9600},
		Filter:   DefaultFilterConfig(),
		Buffer: BufferConfig{
			Dir:            "/var/lib/gps-agent",
			CommitInterval: Duration{time.Second},
		},
	}
}

// ConfigError is a problem with one key of a configuration file.
type ConfigError struct {
	File string
	Line int    // 0 when the key is absent from the file
	Key  string // dotted, for example "receiver.baud"
	Msg  string
}

func (e *ConfigError) Error() string {
	where := e.File
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Key == "" {
		return fmt.Sprintf("%s: %s", where, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", where, e.Key, e.Msg)
}

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig decodes TOML over the defaults and validates the result; errors name file:line and the key.
func ParseConfig(name string, data []byte) (Config, error) {
	cfg := DefaultConfig()
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, tomlError(name, err)
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		lines := keyLines(data)
		out := make([]error, len(errs))
		for i, e := range errs {
			e.File, e.Line = name, lines[e.Key]
			out[i] = e
		}
		return Config{}, errors.Join(out...)
	}
	return cfg, nil
}

func tomlError(name string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		out := make([]error, len(strict.Errors))
		for i := range strict.Errors {
			e := &strict.Errors[i]
			row, _ := e.Position()
			out[i] = &ConfigError{File: name, Line: row, Key: strings.Join(e.Key(), "."), Msg: "unknown key"}
		}
		return errors.Join(out...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		return &ConfigError{File: name, Line: row, Key: strings.Join(de.Key(), "."), Msg: msg}
	}
	return fmt.Errorf("%s: %w", name, err)
}

// keyLines maps each dotted key of a TOML document to the line it is set on, so that validation errors, found
// after decoding, can still point at the line.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = nodeKey(e.Key())
			lines[strings.Join(table, ".")] = p.Shape(e.Raw).Start.Line
		case unstable.KeyValue:
			k := append(append([]string{}, table...), nodeKey(e.Key())...)
			lines[strings.Join(k, ".")] = p.Shape(e.Raw).Start.Line
		}
	}
	return lines
}

func nodeKey(it unstable.Iterator) []string {
	var k []string
	for it.Next() {
		k = append(k, string(it.Node().Data))
	}
	return k
}

var (
	truckIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,256}$`)
	// Kinesis stream names: 1-128 characters of [a-zA-Z0-9_.-].
	streamPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// Validate checks every value and returns one error per bad key, without file positions (ParseConfig adds them).
func (c *Config) Validate() []*ConfigError {
	var errs []*ConfigError
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case c.TruckID == "":
		bad("truck_id", "required: the truck's ID, used as the Kinesis partition key")
	case !truckIDPattern.MatchString(c.TruckID):
		bad("truck_id", "%q: use 1 to 256 letters, digits or ._:-", c.TruckID)
	}
	if _, ok := logLevels[c.LogLevel]; !ok {
		bad("log_level", "%q: use debug, info, warn or error", c.LogLevel)
	}
	if c.Receiver.Device == "" {
		bad("receiver.device", "required: the receiver's serial device, for example /dev/ttyUSB0")
	}
	if c.Receiver.Baud <= 0 || c.Receiver.Baud > 4_000_000 {
		bad("receiver.baud", "%d: use the receiver's line speed, for example 4800, 9600 or 115200", c.Receiver.Baud)
	}
	f := &c.Filter
	if d := f.MinPeriod.Duration; d < 0 || d > time.Hour {
		bad("filter.min_period", "%s: use 0 to 1h", d)
	}
	if d := f.Heartbeat.Duration; d < f.MinPeriod.Duration || d > 24*time.Hour {
		bad("filter.heartbeat", "%s: use min_period (%s) to 24h", d, f.MinPeriod.Duration)
	}
	if v := f.MinDistanceM; !(v >= 0 && v <= 100_000) {
		bad("filter.min_distance_m", "%g: use 0 to 100000 metres", v)
	}
	if v := f.MinCourseChangeDeg; !(v >= 0 && v <= 180) {
		bad("filter.min_course_change_deg", "%g: use 0 to 180 degrees", v)
	}
	if v := f.StopSpeedKmh; !(v >= 0 && v <= 100) {
		bad("filter.stop_speed_kmh", "%g: use 0 to 100 km/h", v)
	}
	if f.MinQuality < 0 || f.MinQuality > 8 {
		bad("filter.min_quality", "%d: use a GGA fix quality 0 to 8", f.MinQuality)
	}
	if v := f.MaxHDOP; !(v >= 0 && v <= 100) {
		bad("filter.max_hdop", "%g: use 0 (off) to 100", v)
	}
	if f.MinSats < 0 || f.MinSats > 64 {
		bad("filter.min_sats", "%d: use 0 (off) to 64", f.MinSats)
	}
	if c.Buffer.Dir == "" {
		bad("buffer.dir", "required: a directory for the buffer database")
	}
	if d := c.Buffer.CommitInterval.Duration; d < 10*time.Millisecond || d > time.Minute {
		bad("buffer.commit_interval", "%s: use 10ms to 1m (it is the loss window on a power cut)", d)
	}
	switch {
	case c.Kinesis.Stream == "":
		bad("kinesis.stream", "required: the Kinesis data stream name")
	case !streamPattern.MatchString(c.Kinesis.Stream):
		bad("kinesis.stream", "%q: a stream name has 1 to 128 letters, digits or _.-", c.Kinesis.Stream)
	}
	switch {
	case c.Kinesis.Region == "":
		bad("kinesis.region", "required: the stream's AWS region, for example eu-west-1")
	case !regionPattern.MatchString(c.Kinesis.Region):
		bad("kinesis.region", "%q: not an AWS region name like eu-west-1", c.Kinesis.Region)
	}
	if e := c.Kinesis.Endpoint; e != "" {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("kinesis.endpoint", "%q: use a URL like http://127.0.0.1:4567", e)
		}
	}
	return errs
}
