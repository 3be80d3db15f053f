package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fleetedge/gps-agent/buffer"
	"github.com/fleetedge/gps-agent/uplink"
	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Config is the agent's configuration, read from a TOML file. Unknown keys are errors.
type Config struct {
	// TruckID names the vehicle: the Kinesis partition key and the record's truck_id. Required.
	// At most 256 characters (the Kinesis partition key limit) of letters, digits and "._:-".
	TruckID string `toml:"truck_id"`
	// LogLevel is debug, info, warn or error, in any case. Default info.
	LogLevel string `toml:"log_level"`
	// StatusSocket is the unix socket `gps-agent status` and `fixes` ask the running daemon through: owner and
	// group only, never a network port. Default /run/gps-agent/agent.sock (systemd's RuntimeDirectory).
	StatusSocket string `toml:"status_socket"`
	// LogFormat is text (default; journald adds the time) or json, for log shippers; in any case.
	LogFormat string `toml:"log_format"`

	Receiver ReceiverConfig `toml:"receiver"`
	Filter   FilterConfig   `toml:"filter"`
	Buffer   BufferConfig   `toml:"buffer"`
	Kinesis  KinesisConfig  `toml:"kinesis"`
	Uplink   UplinkConfig   `toml:"uplink"`
}

// ReceiverConfig names the serial device the GPS receiver is on.
type ReceiverConfig struct {
	// Device is the serial device path, for example /dev/ttyUSB0 or a udev symlink such as /dev/gps0. Required.
	Device string `toml:"device"`
	// Baud is the line speed, or "auto" to find it: the agent tries 4800 to 115200 until checksummed sentences
	// arrive, and remembers the rate that worked. Default 9600: the most common rate of USB GNSS receivers
	// (NMEA 0183 says 4800, which older Garmin units still use).
	Baud Baud `toml:"baud"`
}

// Baud is a line speed in bits per second; 0 means "auto".
type Baud int

// UnmarshalText reads "auto" (any case) and line speeds written as strings ("9600"), as the environment gives
// them; TOML numbers are read as integers. Validate checks the range.
func (b *Baud) UnmarshalText(t []byte) error {
	if strings.EqualFold(string(t), "auto") {
		*b = 0
		return nil
	}
	n, err := strconv.Atoi(string(t))
	if err != nil {
		return &keyError{key: "receiver.baud", msg: fmt.Sprintf("%q: not a line speed: use a number such as 9600, or \"auto\"", t)}
	}
	*b = Baud(n)
	return nil
}

func (b Baud) String() string {
	if b == 0 {
		return "auto"
	}
	return strconv.Itoa(int(b))
}

// BufferConfig places and bounds the durable buffer.
type BufferConfig struct {
	// Dir holds the buffer database. Default /var/lib/gps-agent (systemd's StateDirectory).
	Dir string `toml:"dir"`
	// CommitInterval is how long a fix may wait in memory for Kinesis's ack before it is committed to disk: the
	// loss window on a power cut or kill -9, traded against flash writes while offline. Default 1s.
	CommitInterval Duration `toml:"commit_interval"`
	// MaxBytes bounds the fixes kept while the stream is unreachable; beyond it the oldest are dropped (counted
	// and logged) and recording goes on. Default 151200000 (144 MiB): a week of 1 Hz fixes of about 250 B.
	// Plan about three times this on disk: compaction writes a second file.
	MaxBytes int64 `toml:"max_bytes"`
	// MaxAge drops fixes older than this, in GNSS time counted back from the newest fix (a step of the gateway's
	// clock drops nothing). Default 168h (a week).
	MaxAge Duration `toml:"max_age"`
}

// KinesisConfig names the stream records go to.
type KinesisConfig struct {
	// Stream is the Kinesis data stream name. Required.
	Stream string `toml:"stream"`
	// Region is the AWS region of the stream, for example eu-west-1. Required.
	Region string `toml:"region"`
	// Endpoint overrides the Kinesis endpoint, for local Kinesis (http://127.0.0.1:4567). Optional.
	Endpoint string `toml:"endpoint"`
	// IoT takes credentials from the AWS IoT Core credentials provider with the gateway's X.509 certificate,
	// instead of the environment, web identity or the shared files. Optional.
	IoT *IoTConfig `toml:"iot"`
}

// IoTConfig is the AWS IoT Core credentials provider: mutual TLS with the thing certificate, exchanged for
// temporary credentials of the role behind RoleAlias; refreshed before they expire.
type IoTConfig struct {
	// Endpoint is the account's credentials endpoint (aws iot describe-endpoint --endpoint-type
	// iot:CredentialProvider), e.g. c2abc123.credentials.iot.eu-west-1.amazonaws.com.
	Endpoint string `toml:"endpoint"`
	// RoleAlias is the IoT role alias pointing at the IAM role with kinesis:PutRecords.
	RoleAlias string `toml:"role_alias"`
	// ThingName is the IoT thing the certificate belongs to. Default: truck_id.
	ThingName string `toml:"thing_name"`
	// Cert and Key are the PEM thing certificate and private key files.
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	// CA is an optional PEM file of the root for the endpoint (Amazon Root CA 1); empty uses the system roots.
	CA string `toml:"ca"`
}

// UplinkConfig tunes sending. The defaults put freshness first.
type UplinkConfig struct {
	// Linger lets fixes wait up to this long to share a PutRecords call: each call carries about 700 B of HTTP
	// headers, so at 1 Hz "10s" costs less than half the bytes of "0s", and 10 s of freshness. Default 0s: each
	// fix is sent the moment it exists.
	Linger Duration `toml:"linger"`
	// BackfillShare is the share of one shard's limit (1,000 records/s, 1 MiB/s, shared by every truck hashed to
	// it) the backlog may use after an outage. Default 0.5. The live fix is never held back.
	BackfillShare float64 `toml:"backfill_share"`
	// BackfillDelay: after an outage or a restart with a backlog, backfill starts after a random delay up to
	// this, so that a fleet leaving a depot does not hit its shards together. Default 30s; "0s" starts at once.
	BackfillDelay Duration `toml:"backfill_delay"`
	// MaxBackoff caps the wait between retries after server errors, and is the wait after an error retrying
	// cannot fix (stream not found, access denied, credentials). A down link is probed with each new fix, at most
	// once a second (every 5 s after five minutes down), and throttling is retried within a second, whatever
	// this says. Default 30s.
	MaxBackoff Duration `toml:"max_backoff"`
	// StopTimeout bounds how long a clean stop waits for the call in flight. Default 5s: well inside systemd's
	// stop timeout.
	StopTimeout Duration `toml:"stop_timeout"`
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
		LogLevel:     "info",
		LogFormat:    "text",
		StatusSocket: "/run/gps-agent/agent.sock",
		Receiver:     ReceiverConfig{Baud: 9600},
		Filter:       DefaultFilterConfig(),
		Buffer: BufferConfig{
			Dir:            "/var/lib/gps-agent",
			CommitInterval: Duration{time.Second},
			MaxBytes:       buffer.DefaultOptions().MaxBytes,
			MaxAge:         Duration{buffer.DefaultOptions().MaxAge},
		},
		Uplink: UplinkConfig{
			BackfillShare: uplink.DefaultBackfillShare,
			BackfillDelay: Duration{uplink.DefaultBackfillDelay},
			MaxBackoff:    Duration{uplink.DefaultMaxBackoff},
			StopTimeout:   Duration{uplink.DefaultStopTimeout},
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

// LoadConfig reads a configuration file, applies GPS_AGENT_* environment overrides, and validates the result.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return parseConfig(path, data, os.LookupEnv)
}

// ParseConfig decodes TOML over the defaults and validates the result; errors name file:line and the key.
func ParseConfig(name string, data []byte) (Config, error) {
	return parseConfig(name, data, func(string) (string, bool) { return "", false })
}

func parseConfig(name string, data []byte, env func(string) (string, bool)) (Config, error) {
	cfg, err := decodeConfig(name, data, env)
	if err != nil {
		return Config{}, err
	}
	if err := validateAt(name, data, &cfg); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// decodeConfig decodes TOML over the defaults and applies the environment, without validating the values.
func decodeConfig(name string, data []byte, env func(string) (string, bool)) (Config, error) {
	cfg := DefaultConfig()
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, tomlError(name, data, err)
	}
	if err := applyEnv(&cfg, env); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// validateAt validates cfg, decoded from data, and gives each error the file name and the key's line.
func validateAt(name string, data []byte, cfg *Config) error {
	errs := cfg.Validate()
	if len(errs) == 0 {
		return nil
	}
	lines := keyLines(data)
	out := make([]error, len(errs))
	for i, e := range errs {
		e.File, e.Line = name, lines[e.Key]
		out[i] = e
	}
	return errors.Join(out...)
}

// keyError is an error of a custom value type that knows its key. The TOML decoder gives such errors a position
// only for string values; tomlError finds the line of the others.
type keyError struct{ key, msg string }

func (e *keyError) Error() string { return e.msg }

func tomlError(name string, data []byte, err error) error {
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
	var ke *keyError
	if errors.As(err, &ke) {
		return &ConfigError{File: name, Line: keyLines(data)[ke.key], Key: ke.key, Msg: ke.msg}
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
	if _, ok := logLevels[strings.ToLower(c.LogLevel)]; !ok {
		bad("log_level", "%q: use debug, info, warn or error", c.LogLevel)
	}
	if f := strings.ToLower(c.LogFormat); f != "text" && f != "json" {
		bad("log_format", "%q: use text or json", c.LogFormat)
	}
	if c.Receiver.Device == "" {
		bad("receiver.device", "required: the receiver's serial device, for example /dev/ttyUSB0")
	}
	if c.Receiver.Baud < 0 || c.Receiver.Baud > 4_000_000 {
		bad("receiver.baud", "%d: use the receiver's line speed, for example 4800, 9600 or 115200, or \"auto\"", c.Receiver.Baud)
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
	if c.Buffer.MaxBytes < 1<<20 {
		bad("buffer.max_bytes", "%d: use at least 1048576 (1 MiB)", c.Buffer.MaxBytes)
	}
	if d := c.Buffer.MaxAge.Duration; d < time.Minute {
		bad("buffer.max_age", "%s: use at least 1m", d)
	}
	u := &c.Uplink
	if d := u.Linger.Duration; d < 0 || d > 5*time.Minute {
		bad("uplink.linger", "%s: use 0s to 5m", d)
	}
	if v := u.BackfillShare; !(v > 0 && v <= 1) {
		bad("uplink.backfill_share", "%g: use a share of the shard's limit above 0, at most 1", v)
	}
	if d := u.BackfillDelay.Duration; d < 0 || d > time.Hour {
		bad("uplink.backfill_delay", "%s: use 0s to 1h", d)
	}
	if d := u.MaxBackoff.Duration; d < time.Second || d > time.Hour {
		bad("uplink.max_backoff", "%s: use 1s to 1h", d)
	}
	if d := u.StopTimeout.Duration; d < 0 || d > time.Minute {
		bad("uplink.stop_timeout", "%s: use 0s to 1m", d)
	}
	if iot := c.Kinesis.IoT; iot != nil {
		for key, v := range map[string]string{"endpoint": iot.Endpoint, "role_alias": iot.RoleAlias, "cert": iot.Cert, "key": iot.Key} {
			if v == "" {
				bad("kinesis.iot."+key, "required with [kinesis.iot]")
			}
		}
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
