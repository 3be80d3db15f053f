package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"

	"github.com/fleetedge/gps-agent/nmea"
	"github.com/fleetedge/gps-agent/uplink"
)

// Verdicts of `gps-agent check`.
const (
	pass = "PASS"
	warn = "WARN"
	fail = "FAIL"
	skip = "SKIP"
)

// verdict is one line of `gps-agent check`.
type verdict struct {
	Check  string `json:"check"`
	Result string `json:"result"` // PASS, WARN, FAIL or SKIP
	Detail string `json:"detail"`
	Hint   string `json:"hint,omitempty"`
}

// checkTimeout bounds each network check: a cellular link is slow, a technician is waiting.
const checkTimeout = 15 * time.Second

// checkCmd checks what a gateway needs, one verdict per line; the exit status is 1 if any check fails.
func checkCmd(ctx context.Context, fs *flag.FlagSet, args []string, stdout, _ io.Writer) error {
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON, for programs")
	listen := fs.Duration("listen", 3*time.Second, "how long to listen to a receiver the daemon is not reading")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	vs := runChecks(ctx, *path, *listen)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(vs); err != nil {
			return err
		}
	} else {
		for _, v := range vs {
			fmt.Fprintf(stdout, "%s  %-11s %s\n", v.Result, v.Check, v.Detail)
			if v.Hint != "" {
				fmt.Fprintf(stdout, "      %-11s hint: %s\n", "", v.Hint)
			}
		}
	}
	for _, v := range vs {
		if v.Result == fail {
			return errCheckQuiet
		}
	}
	return nil
}

// errCheckQuiet is returned after failed checks were printed: cli adds one line and exits 1.
var errCheckQuiet = errors.New("a check failed (see the FAIL lines above)")

// runChecks runs every check in order. A config that does not load skips the rest: they all depend on it.
func runChecks(ctx context.Context, cfgPath string, listen time.Duration) []verdict {
	var vs []verdict
	add := func(v verdict) { vs = append(vs, v) }
	cfg, err := LoadConfig(cfgPath)
	if err != nil {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			add(verdict{Check: "config", Result: fail, Detail: line,
				Hint: "every key is explained in the example config (systemd/config.example.toml, /usr/share/doc/gps-agent)"})
		}
		for _, c := range []string{"receiver", "clock", "buffer", "credentials", "stream"} {
			add(verdict{Check: c, Result: skip, Detail: "needs a valid config"})
		}
		return vs
	}
	add(verdict{Check: "config", Result: pass, Detail: fmt.Sprintf("%s: truck %s, receiver %s, stream %s in %s", cfgPath,
		cfg.TruckID, receiverName(cfg.Receiver), cfg.Kinesis.Stream, cfg.Kinesis.Region)})

	sctx, cancel := context.WithTimeout(ctx, checkTimeout)
	st, derr := daemonStatus(sctx, cfg.StatusSocket)
	cancel()
	var running *fieldStatus
	switch {
	case derr == nil:
		running = &st
		add(checkRunningReceiver(cfg, st))
		add(checkClockOffset(time.Duration(st.Agent.Clock.OffsetMs)*time.Millisecond, st.Agent.Receiver.Counters.Fixes > 0))
		if cfg.Receiver.Gpsd != "" { // gpsd serves the daemon and check alike
			v, _ := checkGpsd(ctx, cfg, listen)
			add(v)
		}
	case cfg.Receiver.Gpsd != "":
		if !errors.Is(derr, errNoDaemon) {
			add(verdict{Check: "daemon", Result: warn, Detail: derr.Error()})
		}
		v, clock := checkGpsd(ctx, cfg, listen)
		add(v)
		add(clock)
	default:
		if !errors.Is(derr, errNoDaemon) {
			add(verdict{Check: "daemon", Result: warn, Detail: derr.Error()})
		}
		// A modem's engine is silent until started: start it first, as the daemon does, or the listen hears nothing.
		if cfg.Receiver.AT.Device != "" {
			nmea.SendAT(ctx, *atConfig(cfg.Receiver.AT))
		}
		rx, clock := checkReceiver(ctx, cfg, listen)
		add(rx)
		add(clock)
	}
	if cfg.Receiver.AT.Device != "" {
		add(checkATPort(ctx, cfg, running))
	}
	for _, dev := range []string{cfg.Receiver.Device, cfg.Receiver.AT.Device} {
		if dev == "" {
			continue
		}
		if v, ok := checkServiceDevice(dev, unitDirs); ok {
			add(v)
		}
	}
	add(checkBufferDir(cfg, derr == nil))
	client, cred := checkCredentials(ctx, cfg)
	add(cred)
	if client == nil {
		add(verdict{Check: "stream", Result: skip, Detail: "needs credentials"})
	} else {
		add(checkStream(ctx, client, cfg.Kinesis.Stream))
	}
	if cfg.Kinesis.HealthStream != "" {
		if client == nil {
			add(verdict{Check: "health", Result: skip, Detail: "needs credentials"})
		} else {
			var rx verdict
			for _, v := range vs {
				if v.Check == "receiver" {
					rx = v
				}
			}
			add(checkHealthRow(ctx, client, cfg, running, rx))
		}
	}
	if derr == nil {
		add(checkDelivery(st))
	}
	return vs
}

// checkRunningReceiver judges the receiver from the daemon's counters: the daemon holds the port exclusively.
func checkRunningReceiver(cfg Config, st fieldStatus) verdict {
	rx := st.Agent.Receiver
	v := verdict{Check: "receiver"}
	last := rx.Counters.LastSentence
	via := fmt.Sprintf("%s at %d baud", rx.Device, rx.Baud)
	gpsd := rx.Link != nil && rx.Link.Source == "gpsd"
	if gpsd {
		via = rx.Device
	}
	switch {
	case last.IsZero():
		v.Result, v.Detail = fail, fmt.Sprintf("the daemon reads %s but no NMEA sentence arrived since it started", rx.Device)
		v.Hint = "check receiver.baud (or set it to \"auto\") and the cable; `journalctl -u gps-agent` shows reopen attempts"
		if gpsd {
			v.Hint = "see the gpsd line; `journalctl -u gps-agent` shows reconnect attempts"
		}
	case st.Now.Sub(last) > 10*time.Second:
		v.Result, v.Detail = fail, fmt.Sprintf("%s: last sentence %s", rx.Device, ago(st.Now, last))
		v.Hint = "the receiver went quiet: unplugged, or lost power"
	case rx.Counters.Fixes == 0:
		v.Result, v.Detail = warn, fmt.Sprintf("%s: sentences arrive (last %s) but no fix yet", via, ago(st.Now, last))
		v.Hint = "the antenna needs open sky; a cold start takes a minute or more"
	default:
		v.Result, v.Detail = pass, fmt.Sprintf("%s (read by the running daemon): last sentence %s, %d fixes", via,
			ago(st.Now, last), rx.Counters.Fixes)
	}
	if l := rx.Link; v.Result == fail && l != nil && l.State == nmea.LinkUnavailable {
		v.Detail += fmt.Sprintf("; unavailable since %s: %s", ago(st.Now, l.Since), l.LastError)
	}
	return v
}

// checkReceiver opens the receiver and listens, when the daemon is not running.
func checkReceiver(ctx context.Context, cfg Config, listen time.Duration) (rx, clock verdict) {
	rx = verdict{Check: "receiver"}
	rates := []int{int(cfg.Receiver.Baud)}
	if cfg.Receiver.Baud == 0 {
		rates = nmea.ProbeRates()
	}
	res, err := nmea.Probe(ctx, cfg.Receiver.Device, rates, listen)
	switch {
	case err != nil:
		rx.Result, rx.Detail = fail, err.Error()
		rx.Hint = "check receiver.device; `gps-agent ports` lists serial ports, `ls -l /dev/serial/by-id` names them"
		if isPermission(err) {
			rx.Hint = "the agent's user needs the dialout group (the unit sets it); run check with sudo"
		}
	case !res.NMEA && cfg.Receiver.Baud != 0:
		rx.Result, rx.Detail = fail, fmt.Sprintf("%s opens, but no NMEA at %d baud in %s", cfg.Receiver.Device, cfg.Receiver.Baud, listen)
		rx.Hint = "wrong baud? `gps-agent ports --probe` finds it (stop the daemon first), or set receiver.baud = \"auto\""
		if other, perr := nmea.Probe(ctx, cfg.Receiver.Device, nil, listen); perr == nil && other.NMEA {
			rx.Hint = fmt.Sprintf("the receiver sends NMEA at %d baud: set receiver.baud = %d", other.Baud, other.Baud)
		}
	case !res.NMEA:
		rx.Result, rx.Detail = fail, fmt.Sprintf("%s opens, but no NMEA at any of %v baud", cfg.Receiver.Device, rates)
		rx.Hint = "is it the receiver? `gps-agent ports` lists USB IDs; some receivers talk binary (UBX) until set to NMEA"
	case res.LastFix == nil:
		rx.Result, rx.Detail = warn, fmt.Sprintf("%s: NMEA at %d baud, %d sentences, no fix yet", cfg.Receiver.Device, res.Baud, res.Sentences)
		rx.Hint = "the antenna needs open sky; a cold start takes a minute or more"
	default:
		rx.Result, rx.Detail = pass, fmt.Sprintf("%s: NMEA at %d baud, fix quality %d with %d satellites", cfg.Receiver.Device,
			res.Baud, res.Quality, res.Sats)
	}
	if res.LastFix == nil {
		return rx, checkClockOffset(0, false)
	}
	// Judged as the daemon judges it: a receiver with the week-number rollover bug is corrected first.
	roll := weekRollover{notBefore: buildDate()}
	return rx, checkClockOffset(res.Heard.Sub(roll.fix(nmea.Fix{Time: res.FixTime}).Time), true)
}

// checkClockOffset judges the gateway clock against GNSS time; known is false without a fix.
func checkClockOffset(off time.Duration, known bool) verdict {
	v := verdict{Check: "clock"}
	switch {
	case !known:
		v.Result, v.Detail = warn, "unknown: no fix to compare the gateway clock with"
	case off > maxClockOffset || off < -maxClockOffset:
		v.Result, v.Detail = warn, fmt.Sprintf("gateway clock is %+.1fs off GNSS time", off.Seconds())
		v.Hint = "check NTP (`timedatectl`); records keep GNSS time in ts, only rx and log times are off"
	default:
		v.Result, v.Detail = pass, fmt.Sprintf("gateway clock within %s of GNSS time (%+.3fs)", maxClockOffset, off.Seconds())
	}
	return v
}

// checkBufferDir checks that the buffer directory is writable and has room for the bound and a compaction.
func checkBufferDir(cfg Config, daemonRunning bool) verdict {
	v := verdict{Check: "buffer"}
	dir := cfg.Buffer.Dir
	probeDir := dir
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		probeDir = filepath.Dir(dir) // the agent creates it (systemd's StateDirectory does under the unit)
	}
	f, err := os.CreateTemp(probeDir, ".gps-agent-check-")
	if err != nil {
		v.Result, v.Detail = fail, fmt.Sprintf("%s is not writable: %v", dir, err)
		v.Hint = "run check as the agent's user (sudo -u gps-agent gps-agent check) or as root; the unit's StateDirectory creates it"
		return v
	}
	f.Close()
	os.Remove(f.Name())
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(probeDir, &sfs); err != nil {
		v.Result, v.Detail = warn, fmt.Sprintf("%s: cannot read free space: %v", dir, err)
		return v
	}
	free := int64(sfs.Bavail) * int64(sfs.Bsize)
	need := 3 * cfg.Buffer.MaxBytes // the bound, plus the second file a compaction writes, plus slack
	detail := fmt.Sprintf("%s writable, %s free for a bound of %s", dir, bytesIEC(free), bytesIEC(cfg.Buffer.MaxBytes))
	if daemonRunning {
		detail += " (the daemon has the buffer open)"
	}
	switch {
	case free < 1<<20:
		v.Result, v.Detail = fail, detail
		v.Hint = "the disk is full: fixes stay in memory until commits succeed"
	case free < need:
		v.Result, v.Detail = warn, detail
		v.Hint = fmt.Sprintf("plan about %s: buffer.max_bytes three times over (compaction writes a second file); or lower buffer.max_bytes", bytesIEC(need))
	default:
		v.Result, v.Detail = pass, detail
	}
	return v
}

// checkCredentials builds the Kinesis client and retrieves credentials, naming their source (never the secrets).
func checkCredentials(ctx context.Context, cfg Config) (*kinesis.Client, verdict) {
	v := verdict{Check: "credentials"}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	client, err := uplink.NewClient(ctx, clientConfig(cfg))
	if err != nil {
		v.Result, v.Detail = fail, err.Error()
		return nil, v
	}
	creds, err := client.Options().Credentials.Retrieve(ctx)
	if err != nil {
		v.Result, v.Detail = fail, fmt.Sprintf("no credentials: %v", err)
		v.Hint = "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the unit's environment, /etc/gps-agent credentials files, or [kinesis.iot]"
		return nil, v
	}
	v.Result, v.Detail = pass, "from "+credentialSource(creds)
	if creds.CanExpire {
		v.Detail += fmt.Sprintf(", expire %s", creds.Expires.Local().Format("2006-01-02 15:04"))
	}
	return client, v
}

// credentialSource names where the uplink found credentials, in a technician's words.
func credentialSource(c aws.Credentials) string {
	src := c.Source
	switch {
	case src == "EnvConfigCredentials":
		return "the environment (AWS_ACCESS_KEY_ID)"
	case strings.HasPrefix(src, "SharedConfigCredentials"):
		return "the shared credentials file" + strings.TrimPrefix(src, "SharedConfigCredentials")
	case src == "WebIdentityCredentials":
		return "web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)"
	case src == "IoTCredentialsProvider":
		return "AWS IoT Core (the thing certificate)"
	case src == "":
		return "an unnamed provider"
	}
	return src
}

// checkStream describes the stream: it exists, is ACTIVE, and has open shards.
func checkStream(ctx context.Context, client *kinesis.Client, stream string) verdict {
	v := verdict{Check: "stream"}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		v.Result, v.Detail = fail, fmt.Sprintf("describe stream %s: %v", stream, err)
		var api smithy.APIError
		switch {
		case errors.As(err, &api) && api.ErrorCode() == "ResourceNotFoundException":
			v.Detail = fmt.Sprintf("stream %s not found", stream)
			v.Hint = "check kinesis.stream and kinesis.region"
		case errors.As(err, &api) && strings.Contains(api.ErrorCode(), "AccessDenied"):
			v.Hint = "the credentials' policy needs kinesis:DescribeStreamSummary for check and kinesis:PutRecords (docs/iam-agent-policy.json)"
		case errors.As(err, &api) && strings.Contains(api.ErrorCode(), "Signature") || errors.As(err, &api) && strings.Contains(api.ErrorCode(), "Token"):
			v.Hint = "the credentials are wrong or expired; also check the gateway clock"
		default:
			v.Hint = "no route to Kinesis? check the cellular link, DNS and HTTPS_PROXY"
		}
		return v
	}
	d := out.StreamDescriptionSummary
	status := string(d.StreamStatus)
	shards := aws.ToInt32(d.OpenShardCount)
	detail := fmt.Sprintf("%s: %s, %d open shards, retention %dh", stream, status, shards, aws.ToInt32(d.RetentionPeriodHours))
	switch {
	case status == "ACTIVE" && shards > 0, status == "UPDATING" && shards > 0:
		v.Result, v.Detail = pass, detail
	case status == "CREATING":
		v.Result, v.Detail, v.Hint = warn, detail, "the stream is being created: records go out once it is ACTIVE"
	default:
		v.Result, v.Detail, v.Hint = fail, detail, "the stream cannot take records"
	}
	return v
}

// checkDelivery tells, from the running daemon, whether fixes reach Kinesis.
func checkDelivery(st fieldStatus) verdict {
	v := verdict{Check: "delivery"}
	u := st.Agent.Uplink
	failing := u.LastError != "" && u.LastErrorTime.After(u.LastSuccess)
	switch {
	case failing:
		v.Result, v.Detail = fail, fmt.Sprintf("last call failed %s: %s", ago(st.Now, u.LastErrorTime), u.LastError)
		v.Hint = fmt.Sprintf("%d fixes wait in the buffer; they go out when the stream is reachable", st.Buffer.Pending)
	case u.LastSuccess.IsZero():
		v.Result, v.Detail = warn, "no fix has reached Kinesis yet"
		v.Hint = "wait for a fix (receiver line), then run check again"
	default:
		v.Result, v.Detail = pass, fmt.Sprintf("a fix reached Kinesis %s; %d acked, %d pending", ago(st.Now, u.LastSuccess),
			u.RecordsAcked, st.Buffer.Pending)
	}
	return v
}
