package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fleetedge/gps-agent/buffer"
	"github.com/fleetedge/gps-agent/nmea"
	"github.com/fleetedge/gps-agent/uplink"
)

// runCmd is the daemon.
func runCmd(ctx context.Context, fs *flag.FlagSet, args []string, _, stderr io.Writer) error {
	path := configFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		return err
	}
	return runAgent(ctx, cfg, newLogger(stderr, cfg.LogLevel, cfg.LogFormat))
}

// bufferFile is the database's name inside [buffer] dir.
const bufferFile = "buffer.db"

// runAgent wires receiver -> buffer -> uplink and runs them until ctx ends. On a clean stop the buffer's tail is
// committed, so no accepted fix is lost.
func runAgent(ctx context.Context, cfg Config, log *slog.Logger) error {
	// A receiver that cannot be opened is no reason to stop: the backlog still has to go out, and a USB receiver
	// may come up after the agent. The receiver logs "receiver unavailable" with the device and the error, and
	// keeps trying; `gps-agent check` tells a typo from an unplugged receiver.
	if err := os.MkdirAll(cfg.Buffer.Dir, 0o750); err != nil {
		return fmt.Errorf("create buffer dir: %w", err)
	}
	bopts := buffer.DefaultOptions()
	bopts.CommitInterval = cfg.Buffer.CommitInterval.Duration
	bopts.MaxBytes = cfg.Buffer.MaxBytes
	bopts.MaxAge = cfg.Buffer.MaxAge.Duration
	bopts.Log = log.With("part", "buffer")
	buf, err := buffer.Open(filepath.Join(cfg.Buffer.Dir, bufferFile), bopts)
	if err != nil {
		return fmt.Errorf("open buffer: %w", err)
	}

	client, err := uplink.NewClient(ctx, clientConfig(cfg))
	if err != nil {
		buf.Close()
		return fmt.Errorf("kinesis client: %w", err)
	}
	up := uplink.New(uplinkConfig(cfg, log.With("part", "uplink")), client, queue{buf})

	enc := newRecordEncoder(cfg.TruckID)
	fl := newFilter(cfg.Filter)
	fl.log = log.With("part", "filter")
	clock := &clockWatch{log: log.With("part", "clock")}
	rxCounters := new(nmea.Counters)
	p := &pipeline{started: time.Now(), cfg: cfg, rxCounters: rxCounters, filter: fl, clock: clock, buf: buf, up: up,
		rollover: weekRollover{notBefore: buildDate(), log: log.With("part", "receiver")}}
	p.rx = &nmea.Receiver{
		Device:   cfg.Receiver.Device,
		Baud:     int(cfg.Receiver.Baud),
		AutoBaud: cfg.Receiver.Baud == 0,
		Log:      receiverLog(log.With("part", "receiver"), cfg.Receiver.Device),
		Counters: rxCounters,
		OnFix: func(f nmea.Fix) {
			now := time.Now()
			f = p.rollover.fix(f)
			p.lastFix.Store(summarize(f))
			clock.observe(f.Time, now)
			for _, k := range fl.keep(f, now) {
				p.store(buf, enc, k, log)
			}
		},
	}

	log.Info("gps-agent started", "version", version, "built", p.rollover.notBefore.Format(time.DateOnly),
		"truck_id", cfg.TruckID, "device", cfg.Receiver.Device, "baud", cfg.Receiver.Baud, "stream", cfg.Kinesis.Stream,
		"buffer", filepath.Join(cfg.Buffer.Dir, bufferFile))

	err = p.run(ctx, log)
	log.Info("gps-agent stopped", p.status().logAttrs()...)
	return err
}

// store appends the kept fix k to the buffer. Append does not wait on disk. It fails only when no seq can be handed
// out safely (commits have failed for hours): the fix is lost then, counted, and logged on the first of a run of
// failures. The buffer ages fixes by their GNSS time, which the filter vouched for, never by the gateway's clock.
func (p *pipeline) store(buf *buffer.Buffer, enc *recordEncoder, k rxFix, log *slog.Logger) {
	if _, err := buf.Append(k.Time, func(seq uint64) ([]byte, error) {
		return enc.encode(nil, seq, k.Fix, k.rx), nil
	}); err != nil {
		p.appendErrors.Add(1)
		if !p.appendFailing.Swap(true) {
			log.Error("fix lost: the buffer cannot take it", "err", err)
		}
		return
	}
	p.appendFailing.Store(false)
}

// uplinkConfig is the uplink's part of cfg.
func uplinkConfig(cfg Config, log *slog.Logger) uplink.Config {
	ucfg := uplink.Config{
		Stream:        cfg.Kinesis.Stream,
		PartitionKey:  cfg.TruckID,
		Linger:        cfg.Uplink.Linger.Duration,
		BackfillShare: cfg.Uplink.BackfillShare,
		BackfillDelay: cfg.Uplink.BackfillDelay.Duration,
		MaxBackoff:    cfg.Uplink.MaxBackoff.Duration,
		StopTimeout:   cfg.Uplink.StopTimeout.Duration,
		Log:           log,
	}
	if ucfg.BackfillDelay == 0 {
		ucfg.BackfillDelay = -1 // the uplink reads 0 as "default"; the config's "0s" means no delay
	}
	if ucfg.StopTimeout == 0 {
		ucfg.StopTimeout = -1
	}
	return ucfg
}

// pipeline is the running agent: its parts and what they report.
type pipeline struct {
	started    time.Time
	cfg        Config
	rx         *nmea.Receiver
	rxCounters *nmea.Counters
	filter     *filter
	clock      *clockWatch
	buf        *buffer.Buffer
	up         *uplink.Uplink
	lastFix    atomic.Pointer[FixSummary] // the receiver's last fix, for status
	rollover   weekRollover               // corrects the dates of receivers with the week-number rollover bug

	appendErrors  atomic.Uint64 // fixes the buffer refused (lost)
	appendFailing atomic.Bool   // the last Append failed: log only the first of a run
}

// run runs the parts until ctx ends or one of them fails, then stops them in the order data flows: the receiver
// first (no new fixes), then the uplink (it finishes the call in flight, within its stop timeout, so those records
// are acked rather than sent again later), then the buffer, whose Close commits the tail: a clean stop loses nothing.
func (p *pipeline) run(ctx context.Context, log *slog.Logger) error {
	failed := make(chan error, 3)
	start := func(name string, run func(context.Context) error) (stop func()) {
		partCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := run(partCtx); err != nil && partCtx.Err() == nil {
				failed <- fmt.Errorf("%s: %w", name, err)
			}
		}()
		return func() { cancel(); <-done }
	}
	stopBuf := start("buffer", p.buf.Run)
	stopUp := start("uplink", p.up.Run)
	stopRx := start("receiver", p.rx.Run)

	notify, err := newNotifier()
	if err != nil {
		log.Warn("not notifying systemd", "err", err)
		notify = &notifier{}
	}
	defer notify.close()
	notifyLog := func(state string) {
		if err := notify.send(state); err != nil {
			log.Warn("systemd notify failed", "err", err)
		}
	}
	// The local status socket: `gps-agent status` and `fixes` ask the running daemon through it.
	stopControl, err := p.serveControl(p.cfg.StatusSocket, log.With("part", "control"))
	if err != nil {
		log.Warn("no status socket; status and fixes cannot ask this daemon, and do not read its database while it runs", "err", err)
		stopControl = func() {}
	}
	notifyLog("READY=1\nSTATUS=started")

	stats := time.NewTicker(statsInterval)
	defer stats.Stop()
	// Feed systemd's watchdog at half its period, and only while the pipeline really moves.
	var watchdog <-chan time.Time
	if notify.watchdog > 0 {
		t := time.NewTicker(notify.watchdog / 2)
		defer t.Stop()
		watchdog = t.C
	}
	var stuckLogged bool
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case err = <-failed:
			log.Error("stopping: a part of the agent failed", "err", err)
			break wait
		case <-stats.C:
			log.Info("stats", p.status().logAttrs()...)
		case now := <-watchdog:
			st := p.status()
			if stuck := checkHealth(p, now); stuck != "" {
				if !stuckLogged {
					log.Error("pipeline stuck: no longer feeding the systemd watchdog", "stuck", stuck)
					stuckLogged = true
				}
				notifyLog("STATUS=stuck: " + stuck)
				continue
			}
			stuckLogged = false
			notifyLog("WATCHDOG=1\nSTATUS=" + st.summary())
		}
	}
	notifyLog("STOPPING=1")
	stopControl() // before the parts: nobody asks a buffer that is closing
	stopRx()
	stopUp()
	stopBuf()
	if cerr := p.buf.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close buffer: %w", cerr)
	}
	return err
}

// statsInterval is how often the agent logs its counters: often enough to see a problem in the journal within
// minutes, rarely enough not to fill it.
const statsInterval = 5 * time.Minute

// queue adapts the buffer to what the uplink drains. The two packages never import each other; this is the seam.
type queue struct{ b *buffer.Buffer }

func (q queue) Oldest(after uint64, max int) ([]uplink.Record, error) {
	recs, err := q.b.Oldest(after, max)
	return toUplink(recs), err
}

func (q queue) Newest(max int) ([]uplink.Record, error) {
	recs, err := q.b.Newest(max)
	return toUplink(recs), err
}

func (q queue) Ack(seqs ...uint64) error { return q.b.Ack(seqs...) }
func (q queue) Notify() <-chan struct{}  { return q.b.Notify() }

func toUplink(recs []buffer.Record) []uplink.Record {
	out := make([]uplink.Record, len(recs))
	for i, r := range recs {
		out[i] = uplink.Record{Seq: r.Seq, Data: r.Data, Queued: r.Queued}
	}
	return out
}

// clientConfig is the Kinesis client's configuration: the daemon and `check` build the same client.
func clientConfig(cfg Config) uplink.ClientConfig {
	cc := uplink.ClientConfig{Region: cfg.Kinesis.Region, Endpoint: cfg.Kinesis.Endpoint}
	if iot := cfg.Kinesis.IoT; iot != nil {
		cc.IoT = &uplink.IoTConfig{Endpoint: iot.Endpoint, RoleAlias: iot.RoleAlias, ThingName: iot.ThingName,
			CertFile: iot.Cert, KeyFile: iot.Key, CAFile: iot.CA}
		if cc.IoT.ThingName == "" {
			cc.IoT.ThingName = cfg.TruckID
		}
	}
	return cc
}
