package main

// The fleet drain as a picture: a fleet engineer judges a drain at a glance. Plain SVG written here, in a test
// file, so the agent binary carries none of it.

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/fleetedge/gps-agent/uplink"
	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// svgPalette colours shards in turn.
var svgPalette = []string{"#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// drawFleet writes res as an SVG: above, accepted (solid) and throttled (dashed, red tint) records per second
// per shard, with the shard's limit; below, the live fixes' latency per second (worst and p99 over the fleet)
// with the 2 s target. Time runs from 10 s before the link's return to 10 s after the last backlog record.
func drawFleet(w io.Writer, res fleetResult) error {
	const (
		width       = 960
		left, right = 70, 20
		top1, h1    = 50, 300 // records panel
		h2          = 110
	)
	// A line of figures per shard under the records panel: the latency panel goes below the last.
	extra := 14 * max(0, len(res.shards)-1)
	top2, height := 400+extra, 560+extra
	t0 := -10
	t1 := 10
	for _, s := range res.shards {
		t1 = max(t1, int(s.drained/time.Second)+10)
	}
	x := func(sec float64) float64 {
		return left + (sec-float64(t0))/float64(t1-t0)*(width-left-right)
	}
	maxRec := float64(uplinktest.ShardRecordsPerSecond) * 1.6
	y1 := func(v float64) float64 { return top1 + h1 - min(v, maxRec)/maxRec*h1 }
	const maxLat = 3.0
	y2 := func(v float64) float64 { return float64(top2) + h2 - min(v, maxLat)/maxLat*h2 }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%d trucks on %d shard(s) after a %v outage: %d fixes of backlog each, default settings</text>`+"\n",
		left, res.spec.trucks, res.spec.shards, res.spec.outage, res.spec.backlog)
	fmt.Fprintf(&b, `<text x="%d" y="40" fill="#555">records/s per shard: accepted (solid), throttled (dashed); live fix latency below. 0 s = the link's return.</text>`+"\n", left)

	// Axes and grid.
	for v := 0.0; v <= maxRec; v += 200 {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end" fill="#555">%.0f</text>`+"\n",
			left, width-right, y1(v), y1(v), left-6, y1(v)+4, v)
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#d62728" stroke-dasharray="2,3"/><text x="%d" y="%.1f" text-anchor="end" fill="#d62728">shard limit</text>`+"\n",
		left, width-right, y1(uplinktest.ShardRecordsPerSecond), y1(uplinktest.ShardRecordsPerSecond), width-right, y1(uplinktest.ShardRecordsPerSecond)-4)
	for v := 0.0; v <= maxLat; v++ {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end" fill="#555">%.0f s</text>`+"\n",
			left, width-right, y2(v), y2(v), left-6, y2(v)+4, v)
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#d62728" stroke-dasharray="2,3"/><text x="%d" y="%.1f" text-anchor="end" fill="#d62728">2 s target</text>`+"\n",
		left, width-right, y2(2), y2(2), width-right, y2(2)-4)
	step := 10
	if t1-t0 > 300 {
		step = 60
	}
	for s := 0; s <= t1; s += step {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/><text x="%.1f" y="%d" text-anchor="middle" fill="#555">%d s</text>`+"\n",
			x(float64(s)), x(float64(s)), top1, top2+h2, x(float64(s)), top2+h2+16, s)
	}
	// The return and the end of the backfill delay.
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#000"/><text x="%.1f" y="%d" fill="#000">link back</text>`+"\n",
		x(0), x(0), top1, top2+h2, x(0)+3, top1+12)
	d := uplink.DefaultBackfillDelay.Seconds()
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#999" stroke-dasharray="4,4"/><text x="%.1f" y="%d" fill="#777">backfill delay (spread)</text>`+"\n",
		x(d), x(d), top1, top1+h1, x(d)+3, top1+12)

	// Records per shard.
	byShard := map[string]map[int][2]int{}
	for _, sec := range res.seconds {
		s := int(sec.Second.Sub(res.back.Truncate(time.Second)) / time.Second)
		if byShard[sec.Shard] == nil {
			byShard[sec.Shard] = map[int][2]int{}
		}
		c := byShard[sec.Shard][s]
		byShard[sec.Shard][s] = [2]int{c[0] + sec.Accepted, c[1] + sec.Throttled}
	}
	for i, sr := range res.shards {
		col := svgPalette[i%len(svgPalette)]
		var acc, thr []string
		for s := t0; s <= t1; s++ {
			c := byShard[sr.id][s]
			acc = append(acc, fmt.Sprintf("%.1f,%.1f", x(float64(s)+0.5), y1(float64(c[0]))))
			thr = append(thr, fmt.Sprintf("%.1f,%.1f", x(float64(s)+0.5), y1(float64(c[1]))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", col, strings.Join(acc, " "))
		fmt.Fprintf(&b, `<polyline fill="none" stroke="#d62728" stroke-opacity="0.7" stroke-dasharray="4,2" points="%s"/>`+"\n", strings.Join(thr, " "))
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s: %d trucks, busy %.0f %%, throttled %.1f %%, drained at %.0f s (ideal %.0f s)</text>`+"\n",
			left+10, top1+h1+18+14*i, col, sr.id, sr.trucks, 100*sr.busy, 100*sr.throttled, sr.drained.Seconds(), sr.ideal.Seconds())
	}

	// Live latency per second: the worst and the p99 over the fleet.
	var worst, p99 []string
	secs := make([]int, 0, len(res.liveBySecond))
	for s := range res.liveBySecond {
		secs = append(secs, s)
	}
	slices.Sort(secs)
	for _, s := range secs {
		l := slices.Clone(res.liveBySecond[s])
		slices.Sort(l)
		worst = append(worst, fmt.Sprintf("%.1f,%.1f", x(float64(s)+0.5), y2(l[len(l)-1].Seconds())))
		p99 = append(p99, fmt.Sprintf("%.1f,%.1f", x(float64(s)+0.5), y2(l[(len(l)-1)*99/100].Seconds())))
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#ff7f0e" stroke-width="1" points="%s"/>`+"\n", strings.Join(worst, " "))
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#000" stroke-width="1.5" points="%s"/>`+"\n", strings.Join(p99, " "))
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#000">live fix latency, p99 over the fleet per second (black; %.2f s over the drain), worst (orange); worst truck's p99 %.2f s</text>`+"\n",
		left, top2-8, res.liveP99.Seconds(), res.worstTruckP99.Seconds())
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#777">agents used %.0f s of CPU in %.0f s on this machine; load average %s</text>`+"\n",
		left, height-8, res.agentCPU.Seconds(), res.wall.Seconds(), res.load)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
