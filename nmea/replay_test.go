package nmea

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeLog records each Write with its time.
type writeLog struct {
	mu     sync.Mutex
	writes [][]byte
	at     []time.Time
	wrote  chan struct{}
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, append([]byte(nil), p...))
	w.at = append(w.at, time.Now())
	if w.wrote != nil {
		select {
		case w.wrote <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

func TestReplay(t *testing.T) {
	const log = "testdata/bn-9015.log" // 1 Hz, 17:09:58 to 17:10:07
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	const speed = 20
	var w writeLog
	start := time.Now()
	if err := Replay(t.Context(), bytes.NewReader(data), &w, speed); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)

	// One Write per epoch, each with one time of day.
	var tods []int
	for i, p := range w.writes {
		if bytes.Contains(p, []byte("\n#")) || bytes.HasPrefix(p, []byte("#")) {
			t.Fatalf("write %d has a comment line", i)
		}
		tod := -1
		for _, l := range strings.Split(strings.TrimSpace(string(p)), "\r\n") {
			if x, ok := lineTod([]byte(l)); ok {
				if tod >= 0 && x != tod {
					t.Fatalf("write %d mixes times %d and %d", i, tod, x)
				}
				tod = x
			}
		}
		tods = append(tods, tod)
	}
	if len(w.writes) < 9 {
		t.Fatalf("%d writes, want one per epoch (>= 9)", len(w.writes))
	}
	// Paced at the recorded 1 s / speed per epoch.
	span := time.Duration(tods[len(tods)-1]-tods[0]) * time.Millisecond / speed
	if got := w.at[len(w.at)-1].Sub(w.at[0]); got < span*9/10 || elapsed > span*3+time.Second {
		t.Errorf("first to last write %v (total %v), want about %v", got, elapsed, span)
	}
	// What was replayed decodes like the log itself.
	want, _ := Decode(bytes.NewReader(data), nil)
	got, _ := Decode(bytes.NewReader(bytes.Join(w.writes, nil)), nil)
	want.LastSentence, got.LastSentence = time.Time{}, time.Time{}
	if got.Fixes != want.Fixes || got.Fixes == 0 || got.BadChecksum != want.BadChecksum {
		t.Errorf("replayed decodes to %s, the log to %s", got, want)
	}
}

func TestReplayCancel(t *testing.T) {
	data, err := os.ReadFile("testdata/isync.log")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	w := &writeLog{wrote: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- Replay(ctx, bytes.NewReader(data), w, 1) }()
	<-w.wrote // the first epoch goes out at once; the next one is 1 s away
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Replay = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Replay ignored cancel")
	}
}

func TestLineTod(t *testing.T) {
	tests := []struct {
		line string
		tod  int
		ok   bool
	}{
		{"$GPRMC,123519,A,4807.038,N", (12*3600 + 35*60 + 19) * 1000, true},
		{"$GNGGA,083559.25,4717.11437,N", (8*3600+35*60+59)*1000 + 250, true},
		{"$GPGLL,4916.45,N,12311.12,W,225444,A*1D", (22*3600 + 54*60 + 44) * 1000, true},
		{"$GPZDA,201530.00,04,07,2002,00,00*60", (20*3600 + 15*60 + 30) * 1000, true},
		{"$GPGSV,3,1,11,03,03,111,00", 0, false},
		{"$GPRMC,,V,,,,,,,,,,N*53", 0, false},
		{"$GPGGA,12ab19", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			tod, ok := lineTod([]byte(tc.line))
			if tod != tc.tod || ok != tc.ok {
				t.Errorf("lineTod = %d, %v; want %d, %v", tod, ok, tc.tod, tc.ok)
			}
		})
	}
}
