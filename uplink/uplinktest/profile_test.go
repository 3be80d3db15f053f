package uplinktest

import (
	"testing"
	"time"
)

func TestProfiles(t *testing.T) {
	tests := []struct {
		name     string
		rtt      time.Duration
		up, down int64
	}{
		{"loopback", 0, 0, 0},
		{"lte", 60 * time.Millisecond, 5_000_000, 20_000_000},
		{"poor", 300 * time.Millisecond, 256_000, 1_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseProfile(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if p.RTT() != tt.rtt || p.UpRate != tt.up || p.DownRate != tt.down || p.UpDelay != p.DownDelay {
				t.Errorf("%v, want rtt %v split evenly, up %d, down %d bit/s", p, tt.rtt, tt.up, tt.down)
			}
		})
	}
	if _, err := ParseProfile("3g"); err == nil {
		t.Errorf("parse profile 3g: no error")
	}
}
