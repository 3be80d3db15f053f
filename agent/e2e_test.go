package main

// End-to-end tests: the agent as its own process (this test binary re-executed), a simulated receiver on a real
// pseudo-terminal, a real bbolt buffer, and real local Kinesis (kinesis-mock) on 127.0.0.1.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// execEnv, when set, makes the test binary run the agent's main instead of tests.
const execEnv = "GPS_AGENT_TEST_EXEC"

func TestMain(m *testing.M) {
	if os.Getenv(execEnv) == "1" {
		main()
		return
	}
	if path := os.Getenv(holdEnv); path != "" {
		holdBuffer(path)
		return
	}
	os.Exit(m.Run())
}

// agentProc is a gps-agent process started by a test.
type agentProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

// testExecutable is this test binary, to run as a child process (see TestMain); it skips the test where that
// cannot work.
func testExecutable(t *testing.T) string {
	t.Helper()
	if q := os.Getenv("GPS_AGENT_TEST_EMULATED"); q != "" {
		// Under qemu-user the test binary is an ARM binary the host can exec only through binfmt_misc.
		t.Skipf("runs the test binary as a child process, which %s cannot without binfmt_misc; runs on amd64", q)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// startAgent runs `gps-agent args...` as a child process; t.Cleanup kills it if the test has not stopped it.
func startAgent(t *testing.T, args ...string) *agentProc {
	t.Helper()
	exe := testExecutable(t)
	a := &agentProc{stderr: &syncBuffer{}, done: make(chan struct{})}
	a.cmd = exec.Command(exe, args...)
	a.cmd.Env = append(os.Environ(), execEnv+"=1",
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_SESSION_TOKEN=",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	a.cmd.Stderr = a.stderr
	a.cmd.Stdout = a.stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start agent: %v", err)
	}
	go func() { a.err = a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		select {
		case <-a.done:
		default:
			a.cmd.Process.Kill()
			<-a.done
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", a.stderr.String())
		}
	})
	return a
}

// stop sends SIGTERM and waits for a clean exit.
func (a *agentProc) stop(t *testing.T) {
	t.Helper()
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("agent did not stop within 20 s of SIGTERM")
	}
	if a.err != nil {
		t.Fatalf("agent exited with %v after SIGTERM; output:\n%s", a.err, a.stderr.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// feeder writes simulated epochs into a pseudo-terminal at a fixed rate, as a receiver would.
type feeder struct {
	sim    nmea.Simulator
	master *os.File
	path   string

	mu      sync.Mutex
	written int         // epochs written so far
	at      []time.Time // when each epoch's last byte was written
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func newFeeder(t *testing.T, rate float64) *feeder {
	t.Helper()
	master, path, closePTY, err := nmea.OpenPTY(filepath.Join(t.TempDir(), "gps0"))
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { closePTY() })
	return &feeder{
		sim:    nmea.Simulator{Rate: rate, Start: time.Now().UTC().Truncate(time.Second), Seed: 7},
		master: master,
		path:   path,
	}
}

// start writes epochs from where the last run stopped until pause.
func (f *feeder) start() {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		tick := time.NewTicker(time.Duration(float64(time.Second) / f.sim.Rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			f.mu.Lock()
			i := f.written
			f.mu.Unlock()
			// A reader that went away (the agent stopped) must not block the feeder forever.
			f.master.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := f.master.Write(f.sim.Epoch(i)); err != nil {
				return
			}
			now := time.Now()
			f.mu.Lock()
			f.written++
			f.at = append(f.at, now)
			f.mu.Unlock()
		}
	}()
}

func (f *feeder) pause() int {
	f.cancel()
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written
}

func (f *feeder) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written
}

func writeConfig(t *testing.T, device, endpoint, stream string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	writeFile(t, path, fmt.Sprintf(`truck_id = "TRK-E2E"
log_level = "debug"
status_socket = %q
[receiver]
device = %q
[filter] # keep every fix, so that every epoch can be checked
min_period = "0s"
min_distance_m = 0
stop_speed_kmh = 0
[buffer]
dir = %q
commit_interval = "200ms"
[kinesis]
stream = %q
region = "us-east-1"
endpoint = %q
[uplink]
backfill_delay = "0s" # the fleet jitter would only slow the test down
`, filepath.Join(dir, "agent.sock"), device, filepath.Join(dir, "state"), stream, endpoint))
	return path
}

// arrived is what the stream holds for one truck, checked against the current schema (v2).
type arrived struct {
	bySeq   map[uint64]Record
	dups    int                 // records stored more than once (sent again)
	stored  map[string]struct{} // shard/sequence number of each stored record
	reReads int                 // the same stored record read twice (a reader artifact, not a duplicate)
}

func collect(t *testing.T, got []uplinktest.Got, into *arrived) {
	t.Helper()
	if into.bySeq == nil {
		into.bySeq, into.stored = map[uint64]Record{}, map[string]struct{}{}
	}
	for _, g := range got {
		id := g.ShardID + "/" + g.SequenceNumber
		if _, ok := into.stored[id]; ok {
			into.reReads++
			continue
		}
		into.stored[id] = struct{}{}
		if g.PartitionKey != "TRK-E2E" {
			t.Errorf("record %s: partition key %q, want the truck ID", g.SequenceNumber, g.PartitionKey)
		}
		checkSchema(t, g.Data)
		r, err := decodeRecord(g.Data)
		if err != nil {
			t.Fatalf("record %s does not parse as schema v2: %v\n%s", g.SequenceNumber, err, g.Data)
		}
		if r.TruckID != "TRK-E2E" || r.Seq == 0 || r.Fix < 1 || r.RX.IsZero() {
			t.Errorf("record %s: bad fields: %s", g.SequenceNumber, g.Data)
		}
		if old, ok := into.bySeq[r.Seq]; ok {
			if old != r && !sameRecord(old, r) {
				t.Errorf("seq %d reused for a different fix:\n%+v\n%+v", r.Seq, old, r)
			}
			into.dups++
			continue
		}
		into.bySeq[r.Seq] = r
	}
}

func sameRecord(a, b Record) bool { return a.TS.Equal(b.TS) && a.Lat == b.Lat && a.Lon == b.Lon }

// waitFor polls the stream until cond holds on what arrived, or fails after timeout. Polling is the only
// signal Kinesis gives a consumer.
// If agent is not nil and exits meanwhile, waitFor fails at once.
func waitFor(t *testing.T, agent *agentProc, k *uplinktest.Local, stream string, timeout time.Duration, what string, cond func(*arrived) bool) *arrived {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if agent != nil {
			select {
			case <-agent.done:
				t.Fatalf("agent exited (%v) while waiting for %s; output:\n%s", agent.err, what, agent.stderr.String())
			default:
			}
		}
		var a arrived
		collect(t, k.ReadAll(t, stream), &a)
		if cond(&a) {
			return &a
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; %d records arrived; missing seqs %s", timeout, what, len(a.bySeq), missingRanges(&a))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkAgainstSim asserts that seqs run 1..n without a gap, in the order of the epochs, and that each record is
// the simulator's fix of its epoch: every fix the agent recorded arrived, and none was invented.
func checkAgainstSim(t *testing.T, a *arrived, f *feeder, lastEpoch int) {
	t.Helper()
	seqs := make([]uint64, 0, len(a.bySeq))
	for s := range a.bySeq {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	period := time.Duration(float64(time.Second) / f.sim.Rate)
	prevEpoch := -1
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seq %d missing: got %v", i+1, seqs)
		}
		r := a.bySeq[s]
		epoch := int(r.TS.Sub(f.sim.Fix(0).Time) / period)
		want := f.sim.Fix(epoch)
		if !want.Time.Equal(r.TS) || math.Abs(want.Lat-r.Lat) > 1e-6 || math.Abs(want.Lon-r.Lon) > 1e-6 {
			t.Fatalf("seq %d: record %+v is not simulated epoch %d %+v", s, r, epoch, want)
		}
		if prevEpoch >= 0 && epoch != prevEpoch+1 {
			t.Fatalf("seq %d is epoch %d, after epoch %d: fixes missing between", s, epoch, prevEpoch)
		}
		prevEpoch = epoch
	}
	if prevEpoch != lastEpoch {
		t.Fatalf("last fix to arrive is epoch %d, want %d (the last one written)", prevEpoch, lastEpoch)
	}
}

func TestEndToEnd(t *testing.T) {
	const stream = "e2e"
	k := uplinktest.StartKinesisMock(t, stream, 2)
	f := newFeeder(t, 10)
	agent := startAgent(t, "run", "--config", writeConfig(t, f.path, k.Endpoint, stream))
	f.start()

	waitFor(t, agent, k, stream, 60*time.Second, "50 fixes", func(a *arrived) bool { return len(a.bySeq) >= 50 })
	written := f.pause()
	agent.stop(t) // flushes nothing new: the feeder paused first, so every written epoch has been read
	a := waitFor(t, nil, k, stream, 30*time.Second, "every written fix", func(a *arrived) bool {
		return complete(a, f, written-1)
	})
	checkAgainstSim(t, a, f, written-1)
	t.Logf("%d epochs written, %d fixes arrived, %d duplicates", written, len(a.bySeq), a.dups)
}

// Stream down while the agent records, the agent restarted during the outage, then the stream back: every fix
// recorded during the outage arrives, and no seq is reused.
func TestOutageAcrossRestart(t *testing.T) {
	const stream = "outage"
	k := uplinktest.StartKinesisMock(t, stream, 1)
	f := newFeeder(t, 10)
	cfg := writeConfig(t, f.path, k.Endpoint, stream)
	agent := startAgent(t, "run", "--config", cfg)
	f.start()

	// Pause the receiver until what it recorded has arrived, keep that (kinesis-mock holds data in memory only,
	// so a restart empties it), then take the stream down and record on.
	waitFor(t, agent, k, stream, 60*time.Second, "first fixes", func(a *arrived) bool { return len(a.bySeq) >= 10 })
	paused := f.pause()
	before := waitFor(t, agent, k, stream, 30*time.Second, "fixes before the outage", func(a *arrived) bool {
		return complete(a, f, paused-1)
	})
	k.Stop()
	f.start()

	// Record through the outage: 3 s at 10 Hz, then restart the agent with its backlog on disk.
	outageStart := f.count()
	waitEpochs(t, f, outageStart+30)
	f.pause()
	agent.stop(t)
	if strings.Contains(agent.stderr.String(), "level=ERROR") {
		t.Errorf("agent logged errors in an outage, which is expected operation:\n%s", agent.stderr.String())
	}
	agent = startAgent(t, "run", "--config", cfg)
	f.start()
	waitEpochs(t, f, outageStart+50)
	written := f.pause()

	k.Start()
	// What arrived before the outage plus what arrives after it must be every fix.
	after := waitFor(t, agent, k, stream, 60*time.Second, "the backlog", func(a *arrived) bool {
		for s, r := range before.bySeq {
			if _, ok := a.bySeq[s]; !ok {
				a.bySeq[s] = r
			}
		}
		return complete(a, f, written-1)
	})
	agent.stop(t)
	for s, r := range before.bySeq {
		if !sameRecord(after.bySeq[s], r) {
			t.Errorf("seq %d reused for a different fix", s)
		}
	}
	checkAgainstSim(t, after, f, written-1)
}

// missingSeqs lists the seqs below the highest one that did not arrive.
func missingSeqs(a *arrived) []uint64 {
	var top uint64
	for s := range a.bySeq {
		top = max(top, s)
	}
	var miss []uint64
	for s := uint64(1); s <= top; s++ {
		if _, ok := a.bySeq[s]; !ok {
			miss = append(miss, s)
		}
	}
	return miss
}

// missingRanges is missingSeqs as at most 20 ranges ("5-9 12 ..."), for a failure message: after unclean
// restarts whole seq blocks (65,536 each) are skipped on purpose.
func missingRanges(a *arrived) string {
	var out []string
	miss := missingSeqs(a)
	for i := 0; i < len(miss); {
		j := i
		for j+1 < len(miss) && miss[j+1] == miss[j]+1 {
			j++
		}
		if len(out) == 20 {
			out = append(out, "...")
			break
		}
		if j > i {
			out = append(out, fmt.Sprintf("%d-%d", miss[i], miss[j]))
		} else {
			out = append(out, fmt.Sprint(miss[i]))
		}
		i = j + 1
	}
	return strings.Join(out, " ")
}

// complete reports whether seqs 1..n all arrived and the last is epoch.
func complete(a *arrived, f *feeder, epoch int) bool {
	var top uint64
	for s := range a.bySeq {
		top = max(top, s)
	}
	return uint64(len(a.bySeq)) == top && hasEpoch(a, f, epoch)
}

func hasEpoch(a *arrived, f *feeder, epoch int) bool {
	ts := f.sim.Fix(epoch).Time
	for _, r := range a.bySeq {
		if r.TS.Equal(ts) {
			return true
		}
	}
	return false
}

func waitEpochs(t *testing.T, f *feeder, n int) {
	t.Helper()
	// The epochs still to come at the feeder's rate, and 30 s for a loaded machine.
	rate := f.sim.Rate
	if rate == 0 {
		rate = 1 // the simulator's default
	}
	left := time.Duration(float64(n-f.count()) / rate * float64(time.Second))
	deadline := time.Now().Add(left + 30*time.Second)
	for f.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("feeder stuck at %d epochs, want %d", f.count(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name   string
		config string
		want   []string
	}{
		{"bad config", "truck_id = \"T\"\n[receiver]\ndevice = \"/dev/gps0\"\nbaud = \"fast\"\n", []string{"config.toml:4: receiver.baud"}},
		{"unknown key", "truck_id = \"T\"\n[reciever]\ndevice = \"/dev/gps0\"\n", []string{"config.toml:2: reciever: unknown key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			writeFile(t, path, tt.config)
			a := startAgent(t, "run", "--config", path)
			select {
			case <-a.done:
			case <-time.After(20 * time.Second):
				t.Fatal("agent did not exit")
			}
			var exit *exec.ExitError
			if !errors.As(a.err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("exit = %v, want status 1", a.err)
			}
			out := a.stderr.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output %q lacks %q", out, w)
				}
			}
			if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
				t.Errorf("agent panicked:\n%s", out)
			}
		})
	}
}

// A missing serial device is a clear error in the log, not a reason to stop: the backlog still goes out, and a
// USB receiver may come up later (here it does, at the configured path, and its fixes arrive).
func TestMissingReceiver(t *testing.T) {
	const stream = "missing"
	k := uplinktest.StartKinesisMock(t, stream, 1)
	f := newFeeder(t, 10)
	link := filepath.Join(t.TempDir(), "gps1") // not there yet
	agent := startAgent(t, "run", "--config", writeConfig(t, link, k.Endpoint, stream))
	agent.waitLog(t, "receiver unavailable")
	agent.waitLog(t, "open receiver "+link+": ")
	if out := agent.stderr.String(); strings.Contains(out, "panic") {
		t.Fatalf("agent panicked:\n%s", out)
	}
	if err := os.Symlink(f.path, link); err != nil { // the receiver is plugged in
		t.Fatal(err)
	}
	f.start()
	waitFor(t, agent, k, stream, 60*time.Second, "fixes from the late receiver", func(a *arrived) bool { return len(a.bySeq) >= 5 })
	f.pause()
	agent.stop(t)
}
