package nmea

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pseudo-terminals are opened as serial ports on Linux only")
	}
	tests := []struct {
		name    string
		feed    func(i int, sim *Simulator) []byte // bytes written every 100 ms; nil writes nothing
		want    bool
		wantFix bool
	}{
		{name: "nmea with a fix", feed: func(i int, sim *Simulator) []byte { return sim.Epoch(i) }, want: true, wantFix: true},
		{name: "silent port"},
		{name: "binary noise", feed: func(i int, _ *Simulator) []byte { return []byte{0xb5, 0x62, 0x01, 0x07, 0x5c, 0x00, byte(i), 0xff} }},
		{name: "bad checksums", feed: func(i int, sim *Simulator) []byte {
			return []byte(strings.ReplaceAll(string(sim.Epoch(i)), "*", "*0"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			master, path, closePTY, err := OpenPTY(filepath.Join(t.TempDir(), "gps0"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { closePTY() })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			done := make(chan struct{})
			defer func() { cancel(); <-done }()
			go func() {
				defer close(done)
				if tc.feed == nil {
					return
				}
				sim := &Simulator{Rate: 10, Start: time.Now().UTC().Truncate(time.Second), Seed: 3}
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for i := 0; ; i++ {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					master.SetWriteDeadline(time.Now().Add(time.Second))
					if _, err := master.Write(tc.feed(i, sim)); err != nil {
						return
					}
				}
			}()
			got, err := Probe(ctx, path, []int{9600, 4800}, 1500*time.Millisecond)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if got.NMEA != tc.want || (got.Baud != 0) != tc.want {
				t.Fatalf("Probe = %+v, want NMEA %v", got, tc.want)
			}
			if tc.want && got.Baud != 9600 {
				t.Errorf("baud %d, want the first rate that works, 9600", got.Baud)
			}
			if (got.LastFix != nil) != tc.wantFix {
				t.Errorf("last fix %v, want a fix: %v", got.LastFix, tc.wantFix)
			}
		})
	}
}

func TestProbeMissingDevice(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "ttyUSB9")
	_, err := Probe(context.Background(), dev, nil, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), dev) {
		t.Fatalf("Probe of a missing device: err %v, want one naming %s", err, dev)
	}
}

func TestProbeRatesIsACopy(t *testing.T) {
	r := ProbeRates()
	if len(r) == 0 || r[0] != 4800 {
		t.Fatalf("ProbeRates() = %v", r)
	}
	r[0] = 1
	if ProbeRates()[0] != 4800 {
		t.Fatal("ProbeRates returned the package's own array")
	}
}

func TestListPorts(t *testing.T) {
	ports, err := ListPorts()
	if err != nil {
		t.Skipf("no serial enumeration on this machine: %v", err)
	}
	for i, p := range ports {
		if !strings.HasPrefix(p.Name, "/dev/") {
			t.Errorf("port %d: name %q is not a device path", i, p.Name)
		}
		if i > 0 && ports[i-1].Name > p.Name {
			t.Errorf("ports not sorted: %q before %q", ports[i-1].Name, p.Name)
		}
		if !p.USB && (p.VID != "" || p.PID != "") {
			t.Errorf("port %s: USB ids %s:%s on a non-USB port", p.Name, p.VID, p.PID)
		}
	}
}
