package main

import (
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// lossWindows are the spans around unclean stops (kill -9, power cuts) in which a fix may be lost: from one commit
// interval plus the fsync's own time before the stop, to the moment the agent is up again.
type lossWindows []struct{ from, to time.Time }

func (ws *lossWindows) add(from, to time.Time) {
	*ws = append(*ws, struct{ from, to time.Time }{from, to})
}

// awaitEveryFixOutside waits until every one of the first written epochs f wrote, one a period, has arrived, except those written
// inside a loss window; then it checks that no epoch arrived under two seqs, and counts the epochs lost.
func awaitEveryFixOutside(t *testing.T, ws lossWindows, agent *agentProc, k *uplinktest.Local, stream string,
	f *feeder, period time.Duration, written int, timeout time.Duration) (got *arrived, lost int) {
	t.Helper()
	mayLose := map[int]bool{}
	for i := range written {
		for _, w := range ws {
			if !f.at[i].Before(w.from) && !f.at[i].After(w.to) {
				mayLose[i] = true
			}
		}
	}
	epoch := func(r Record) int { return int(r.TS.Sub(f.sim.Fix(0).Time) / period) }
	got = waitFor(t, agent, k, stream, timeout, "every fix outside the loss windows", func(a *arrived) bool {
		have := map[int]bool{}
		for _, r := range a.bySeq {
			have[epoch(r)] = true
		}
		for i := range written {
			if !have[i] && !mayLose[i] {
				return false
			}
		}
		return true
	})
	// No seq reused for a different fix (collect already fails on that), and no epoch recorded twice under two seqs.
	byEpoch := map[int]uint64{}
	for s, r := range got.bySeq {
		e := epoch(r)
		if other, dup := byEpoch[e]; dup {
			t.Errorf("epoch %d recorded twice, as seq %d and %d", e, other, s)
		}
		byEpoch[e] = s
	}
	for i := range written {
		if _, ok := byEpoch[i]; !ok {
			lost++
		}
	}
	return got, lost
}
