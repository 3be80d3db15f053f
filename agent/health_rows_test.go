package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

// fakeReceiver drives healthRows.step second by second: what the link says, whether sentences and fixes arrive.
type fakeReceiver struct {
	link      nmea.LinkState
	sentences uint64
	rows      []healthRow
	at        []int // the fake second each row was put at
}

// TestHealthRowsStates walks a receiver through its states on a fake clock: a start row once the state is known,
// a change row at each change, at most one per 10 s while it flaps (carrying the latest state), interval rows
// when nothing changes, and a reopened receiver that is not called ok before it has a fix.
func TestHealthRowsStates(t *testing.T) {
	base := time.Now()
	sec := 0
	gnss0 := time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)
	rx := &fakeReceiver{link: nmea.LinkState{State: nmea.LinkStarting}}
	h := &healthRows{truckID: "TRK-1", interval: time.Minute, boot: "b00t", started: base, poll: time.Second,
		put: func(data []byte) {
			var r healthRow
			if err := json.Unmarshal(data, &r); err != nil {
				t.Fatalf("row %s: %v", data, err)
			}
			rx.rows = append(rx.rows, r)
			rx.at = append(rx.at, sec)
		},
		gather:    func(time.Time) healthInputs { return healthInputs{} },
		link:      func() nmea.LinkState { return rx.link },
		sentences: func() uint64 { return rx.sentences },
	}
	l := &rowsLoop{}
	// run advances the fake clock by n seconds; each second, talk and fix say what the receiver sends.
	run := func(n int, talk, fix bool) {
		for range n {
			sec++
			now := base.Add(time.Duration(sec) * time.Second)
			if talk {
				rx.sentences += 5
			}
			if fix {
				h.sawFix(gnss0.Add(time.Duration(sec)*time.Second), now)
			}
			h.step(l, now)
		}
	}
	var got []string
	seen := 0
	note := func() {
		for i, r := range rx.rows[seen:] {
			got = append(got, fmt.Sprintf("%d:%s:%s@%d", r.Seq, r.Reason, r.Receiver, rx.at[seen+i]))
		}
		seen = len(rx.rows)
	}
	run(2, false, false) // starting: nothing yet
	rx.link = nmea.LinkState{State: nmea.LinkOpen}
	run(3, true, true) // t=3..5: open, fixes
	note()
	run(1, true, false)   // the last epoch's fix came a second before its last sentences
	run(20, false, false) // silent from 7: "silent" at 15 (10 s without a sentence)
	note()
	run(3, true, false) // talking again, no fix
	note()
	run(5, true, true) // ok again: held until 10 s after the last change row
	note()
	run(70, true, true) // an interval row a minute after the last row
	note()
	rx.link = nmea.LinkState{State: nmea.LinkUnavailable, LastError: "open /dev/gps0: no such file or directory"}
	run(15, false, false)
	note()
	rx.link = nmea.LinkState{State: nmea.LinkOpen} // plugged in again: its ten seconds before a verdict
	run(5, true, false)
	note()
	run(10, true, false) // still no fix 10 s after the open: no_fix
	note()
	want := []string{
		"1:start:ok@3",       // open seen at 3 with a fix
		"2:change:silent@16", // the last sentence at 6: never no_fix on the way
		"3:change:no_fix@27", // talking from 27 without a fix: 11 s after the last change row
		"4:change:ok@37",     // fixes from 30, held to 10 s after the last change row
		"5:interval:ok@97",   // a minute after the last row
		"6:change:unavailable@105",
		"7:change:no_fix@130", // reopened at 120: undecided for its ten seconds, never called ok
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("rows\n%s\nwant\n%s", strings.Join(got, " "), strings.Join(want, " "))
	}
	for _, r := range rx.rows {
		if r.Receiver == rxUnavailable && !strings.Contains(r.ReceiverError, "no such file") {
			t.Errorf("row %d: unavailable without its error: %+v", r.Seq, r)
		}
		if r.V != 1 || r.TruckID != "TRK-1" || r.Boot != "b00t" || r.TSSrc != "gnss" || r.GNSSTS == nil {
			t.Errorf("row %d: %+v", r.Seq, r)
		}
	}
}
