package uplinktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// readyTimeout bounds start-up: kinesis-mock (a Scala.js bundle) takes ~5 s.
const readyTimeout = 60 * time.Second

// Region is the region the stand-ins serve and Client signs for.
const Region = "us-east-1"

// Local is a running local Kinesis stand-in.
type Local struct {
	// Endpoint is the plain-HTTP endpoint, http://127.0.0.1:PORT.
	Endpoint string

	t       testing.TB
	kind    string // "kinesis-mock" or "kinesalite"
	stream  string
	shards  int
	dir     string // the npm package directory
	port    int
	tlsPort int
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// StartKinesisMock starts kinesis-mock with stream created (shards shards)
// and waits until the stream is ACTIVE. It is killed on test cleanup.
func StartKinesisMock(t testing.TB, stream string, shards int) *Local {
	t.Helper()
	l := newLocal(t, "kinesis-mock", "kinesis-local", stream, shards)
	l.tlsPort = freePort(t)
	l.Start()
	return l
}

// kinesaliteCBOR makes kinesalite store the records of a CBOR put as it
// stores those of a JSON put. It decodes a CBOR record's Data to a Node
// Buffer and keeps it in a JSON-encoded database, where a Buffer becomes
// {"type":"Buffer","data":[...]}: the put is acknowledged, but GetRecords
// then returns an object where the SDK expects base64. Converted to base64
// before the action runs, the record reads back byte for byte.
const kinesaliteCBOR = `
for (const action of ['putRecords', 'putRecord']) {
  const path = require.resolve(process.cwd() + '/actions/' + action)
  const run = require(path)
  const base64 = r => { if (r && Buffer.isBuffer(r.Data)) r.Data = r.Data.toString('base64') }
  require.cache[path].exports = function (store, data, cb) {
    if (Array.isArray(data.Records)) data.Records.forEach(base64); else base64(data)
    return run(store, data, cb)
  }
}
`

// StartKinesalite starts kinesalite, creates stream with shards shards and
// waits until it is ACTIVE. It is killed on test cleanup.
func StartKinesalite(t testing.TB, stream string, shards int) *Local {
	t.Helper()
	l := newLocal(t, "kinesalite", "kinesalite", stream, shards)
	l.Start()
	return l
}

func newLocal(t testing.TB, kind, pkg, stream string, shards int) *Local {
	t.Helper()
	dir := filepath.Join(nodeModules(t), pkg)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("%s not installed (%v): run `make deps` (npm ci in devenv)", kind, err)
	}
	l := &Local{
		t: t, kind: kind, stream: stream, shards: shards, dir: dir,
		port:    freePort(t),
		logPath: filepath.Join(t.TempDir(), kind+".log"),
	}
	l.Endpoint = "http://127.0.0.1:" + strconv.Itoa(l.port)
	t.Cleanup(func() {
		l.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(l.logPath); err == nil {
				t.Logf("%s log (%s):\n%s", kind, l.logPath, tail(b, 4000))
			}
		}
	})
	return l
}

// Start starts the stand-in on its port (again, after Stop: the stream is
// re-created empty) and waits until the stream is ACTIVE.
func (l *Local) Start() {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cmd != nil {
		l.t.Fatalf("start %s: already running", l.kind)
	}
	logf, err := os.OpenFile(l.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		l.t.Fatalf("start %s: %v", l.kind, err)
	}
	defer logf.Close()

	var cmd *exec.Cmd
	switch l.kind {
	case "kinesis-mock":
		cmd = exec.Command("node", "main.js")
		cmd.Env = append(os.Environ(),
			fmt.Sprintf("INITIALIZE_STREAMS=%s:%d", l.stream, l.shards),
			fmt.Sprintf("KINESIS_MOCK_PLAIN_PORT=%d", l.port),
			fmt.Sprintf("KINESIS_MOCK_TLS_PORT=%d", l.tlsPort),
			"AWS_REGION="+Region,
			"CREATE_STREAM_DURATION=0ms",
			"SHOULD_PERSIST_DATA=false",
		)
	default:
		preload := filepath.Join(l.t.TempDir(), "kinesalite-cbor.js")
		if err := os.WriteFile(preload, []byte(kinesaliteCBOR), 0o644); err != nil {
			l.t.Fatalf("start %s: %v", l.kind, err)
		}
		cmd = exec.Command("node", "--require", preload, "cli.js", "--port", strconv.Itoa(l.port), "--createStreamMs", "0")
	}
	cmd.Dir = l.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Own process group, so Stop kills node and anything it spawned, and
	// nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("start %s: %v", l.kind, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	l.cmd, l.done = cmd, done

	if err := l.waitReady(); err != nil {
		l.stopLocked()
		b, _ := os.ReadFile(l.logPath)
		l.t.Fatalf("start %s on %s: %v\nlog:\n%s", l.kind, l.Endpoint, err, tail(b, 4000))
	}
}

// Stop kills the stand-in (an outage: the port refuses connections) and
// waits for it to exit. Its data is lost. Safe to call twice.
func (l *Local) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopLocked()
}

func (l *Local) stopLocked() {
	if l.cmd == nil {
		return
	}
	_ = syscall.Kill(-l.cmd.Process.Pid, syscall.SIGKILL)
	<-l.done
	l.cmd, l.done = nil, nil
}

// waitReady waits until the stream is ACTIVE, creating it on kinesalite.
func (l *Local) waitReady() error {
	ctx, cancel := context.WithTimeout(l.t.Context(), readyTimeout)
	defer cancel()
	c := l.client()
	created := l.kind == "kinesis-mock"
	var last error
	for {
		select {
		case <-l.done:
			return errors.New("exited")
		case <-ctx.Done():
			return fmt.Errorf("stream %s not active after %v: %w", l.stream, readyTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
		if !created {
			_, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{
				StreamName: aws.String(l.stream), ShardCount: aws.Int32(int32(l.shards))})
			var inUse *types.ResourceInUseException
			if err != nil && !errors.As(err, &inUse) {
				last = fmt.Errorf("create stream: %w", err)
				continue
			}
			created = true
		}
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(l.stream)})
		if err != nil {
			last = err
			continue
		}
		if s := out.StreamDescriptionSummary.StreamStatus; s == types.StreamStatusActive {
			return nil
		} else {
			last = fmt.Errorf("status %s", s)
		}
	}
}

// Client returns a Kinesis client for the stand-in: dummy static
// credentials, region us-east-1, endpoint override.
func (l *Local) Client(t testing.TB) *kinesis.Client {
	return l.client()
}

func (l *Local) client() *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:           Region,
		BaseEndpoint:     aws.String(l.Endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDLOCAL", "local-secret", ""),
		RetryMaxAttempts: 1,
	})
}

// Got is one record read back from the stream.
type Got struct {
	ShardID, PartitionKey, SequenceNumber string
	Data                                  []byte
}

// ReadAll reads every record of every shard of stream from TRIM_HORIZON
// until caught up, shard by shard.
func (l *Local) ReadAll(t testing.TB, stream string) []Got {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := l.client()
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("read all %s: list shards: %v", stream, err)
	}
	var got []Got
	for _, sh := range shards.Shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatalf("read all %s: shard iterator %s: %v", stream, aws.ToString(sh.ShardId), err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				t.Fatalf("read all %s: get records %s: %v", stream, aws.ToString(sh.ShardId), err)
			}
			for _, r := range out.Records {
				got = append(got, Got{ShardID: aws.ToString(sh.ShardId), PartitionKey: aws.ToString(r.PartitionKey),
					SequenceNumber: aws.ToString(r.SequenceNumber), Data: r.Data})
			}
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return got
}

// nodeModules finds devenv/node_modules from the repository root, found by
// walking up from the working directory to go.mod.
func nodeModules(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("find repo root: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "devenv", "node_modules")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("find repo root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// freePort returns a port free on 127.0.0.1 right now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		b = append([]byte("..."), b[len(b)-n:]...)
	}
	return bytes.TrimSpace(b)
}
