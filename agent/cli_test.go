package main

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fleetedge/gps-agent/nmea"
)

func runCLI(t *testing.T, stdin []byte, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if stdin != nil {
		// decode reads os.Stdin; give it a file.
		path := filepath.Join(t.TempDir(), "stdin")
		writeFile(t, path, string(stdin))
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		old := os.Stdin
		os.Stdin = f
		defer func() { os.Stdin = old }()
	}
	var out, errb bytes.Buffer
	code = cli(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpForEveryCommand(t *testing.T) {
	for name := range commands() {
		t.Run(name, func(t *testing.T) {
			if name == "version" {
				return
			}
			code, _, stderr := runCLI(t, nil, name, "--help")
			if code != 0 || !strings.Contains(stderr, "usage: gps-agent "+name) || !strings.Contains(stderr, "example:") {
				t.Errorf("%s --help: exit %d, output:\n%s", name, code, stderr)
			}
		})
	}
	code, stdout, _ := runCLI(t, nil, "help")
	if code != 0 || !strings.Contains(stdout, "decode") || !strings.Contains(stdout, "simulate") {
		t.Errorf("help: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := runCLI(t, nil, "fly"); code != 2 || !strings.Contains(stderr, `unknown command "fly"`) {
		t.Errorf("unknown command: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runCLI(t, nil, "decode", "--bogus"); code != 2 || !strings.Contains(stderr, "bogus") {
		t.Errorf("bad flag: exit %d\n%s", code, stderr)
	}
}

// decode is the decoder's black box: its records are exactly the package's fixes, numbered from 1.
func TestDecodeRealLog(t *testing.T) {
	const log = "../nmea/testdata/hemi.log"
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var want []nmea.Fix
	if _, err := nmea.Decode(bytes.NewReader(data), func(f nmea.Fix) { want = append(want, f) }); err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("the package found no fix in the log: test data broken")
	}
	code, stdout, stderr := runCLI(t, nil, "decode", "--truck-id", "TRK-9", log)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d records, want %d", len(lines), len(want))
	}
	for i, line := range lines {
		checkSchema(t, []byte(line))
		r, err := decodeRecord([]byte(line))
		if err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, line)
		}
		if r.Seq != uint64(i+1) || r.TruckID != "TRK-9" || !r.TS.Equal(want[i].Time.Truncate(1e6)) ||
			math.Abs(r.Lat-want[i].Lat) > 1e-7 || math.Abs(r.Lon-want[i].Lon) > 1e-7 || !r.RX.IsZero() {
			t.Errorf("line %d = %s, want seq %d of fix %v", i+1, line, i+1, want[i])
		}
	}
	if !strings.Contains(stderr, "hemi.log: "+strconv.Itoa(len(want))+" fixes;") || !strings.Contains(stderr, "bad_checksum=") {
		t.Errorf("summary on stderr = %q", stderr)
	}
}

// Lines decode cannot use are counted and reported, never fatal.
func TestDecodeBadInputFromStdin(t *testing.T) {
	var sim nmea.Simulator
	var in bytes.Buffer
	in.Write(sim.Epoch(0))
	in.WriteString("$GPRMC,garbage*00\r\n\x00\x00\xb5\x62binary\r\nnot nmea at all\r\n")
	in.Write(sim.Epoch(1))
	code, stdout, stderr := runCLI(t, in.Bytes(), "decode")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if n := strings.Count(stdout, "\n"); n != 2 {
		t.Errorf("%d records, want 2:\n%s", n, stdout)
	}
	if !strings.Contains(stderr, "stdin: 2 fixes") || !strings.Contains(stderr, "bad_checksum=1") {
		t.Errorf("summary = %q", stderr)
	}
}

func TestDecodeMissingFile(t *testing.T) {
	code, _, stderr := runCLI(t, nil, "decode", "/nonexistent/capture.nmea")
	if code != 1 || !strings.Contains(stderr, "open input: open /nonexistent/capture.nmea: no such file") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

// simulate --out writes epochs that decode back into exactly the simulated fixes.
func TestSimulateToFileDecodes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sim.nmea")
	if code, _, stderr := runCLI(t, nil, "simulate", "--out", out, "--count", "25", "--rate", "5", "--seed", "3"); code != 0 {
		t.Fatalf("simulate: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"RMC,", "GGA,", "GSA,", "GSV,"} {
		if !bytes.Contains(data, []byte(kind)) {
			t.Errorf("simulated NMEA lacks %s sentences", kind)
		}
	}
	code, stdout, stderr := runCLI(t, nil, "decode", out)
	if code != 0 {
		t.Fatalf("decode: %s", stderr)
	}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	n := 0
	for ; sc.Scan(); n++ {
		checkSchema(t, sc.Bytes())
		if _, err := decodeRecord(sc.Bytes()); err != nil {
			t.Fatalf("record %d: %v", n+1, err)
		}
	}
	if n != 25 {
		t.Errorf("%d fixes decoded from 25 simulated epochs", n)
	}
}

// --replay plays a recorded log; to a file it comes out as the log's sentences, without its comments.
func TestSimulateReplay(t *testing.T) {
	out := filepath.Join(t.TempDir(), "replay.nmea")
	const log = "../nmea/testdata/bn-9015.log"
	if code, _, stderr := runCLI(t, nil, "simulate", "--replay", log, "--speed", "1000", "--out", out); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	_, want, _ := runCLI(t, nil, "decode", log)
	_, got, _ := runCLI(t, nil, "decode", out)
	if got != want || want == "" {
		t.Errorf("replayed log decodes to\n%s\nwant\n%s", got, want)
	}
}
