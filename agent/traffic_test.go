package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

// status shows what a fix costs and the day's traffic at the current rate, from the last minute's samples.
func TestStatusTraffic(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		name             string
		samples          []drainSample
		perFix, mbPerDay float64
	}{
		{name: "no samples"},
		{name: "one sample", samples: []drainSample{{at: t0, acked: 5, bytes: 4000}}},
		{name: "1 Hz live", samples: []drainSample{{at: t0, acked: 100, bytes: 80_000},
			{at: t0.Add(30 * time.Second), acked: 130, bytes: 104_000}, {at: t0.Add(60 * time.Second), acked: 160, bytes: 128_000}},
			perFix: 800, mbPerDay: 48_000.0 / 60 * 86400 / 1e6},
		{name: "link down: bytes but nothing stored", samples: []drainSample{{at: t0, acked: 10, bytes: 1000},
			{at: t0.Add(10 * time.Second), acked: 10, bytes: 2000}},
			perFix: 0, mbPerDay: 100.0 * 86400 / 1e6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m drainMeter
			for _, s := range tt.samples {
				m.add(s)
			}
			perFix, mb := m.traffic()
			if math.Abs(perFix-tt.perFix) > 1e-9 || math.Abs(mb-tt.mbPerDay) > 1e-9 {
				t.Errorf("traffic() = %v B per fix, %v MB/day; want %v, %v", perFix, mb, tt.perFix, tt.mbPerDay)
			}
		})
	}

	st := fieldStatus{Now: t0, Agent: &Status{Started: t0}, BytesPerFix: 812, MBPerDay: 70.2}
	var out bytes.Buffer
	st.writeText(&out)
	if want := "812 B per fix, 70.2 MB/day at this rate (2106 MB/30 days)"; !strings.Contains(out.String(), want) {
		t.Errorf("status text lacks %q:\n%s", want, out.String())
	}
}
