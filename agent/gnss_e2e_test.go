package main

// End to end through gpsd and through a modem's GNSS engine: the agent as its own process, real gpsd, the
// simulated modem, local Kinesis.

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/internal/gpsdtest"
	"github.com/fleetedge/gps-agent/nmea"
	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// receiverConfig writes writeConfig's file with its [receiver] device line replaced by section.
func receiverConfig(t *testing.T, section, endpoint, stream string) string {
	t.Helper()
	path := writeConfig(t, "REPLACE-ME", endpoint, stream)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(data), `device = "REPLACE-ME"`, section, 1)
	writeFile(t, path, doc)
	return path
}

// agentStatus asks the running agent through its socket.
func agentStatus(t *testing.T, cfg string) fieldStatus {
	t.Helper()
	code, out, errOut := runCLI(t, nil, "status", "--config", cfg, "--json")
	var st fieldStatus
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Agent == nil || st.Agent.Receiver.Link == nil {
		t.Fatalf("status: exit %d, %s %s", code, out, errOut)
	}
	return st
}

// waitLink polls the agent's status until its receiver link is in state.
func waitLink(t *testing.T, agent *agentProc, cfg, state string) fieldStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := agentStatus(t, cfg)
		if st.Agent.Receiver.Link.State == state {
			return st
		}
		select {
		case <-agent.done:
			t.Fatalf("agent exited: %v", agent.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("link %+v, want %s", st.Agent.Receiver.Link, state)
		}
		time.Sleep(100 * time.Millisecond) // status is asked for, nothing announces a change
	}
}

// checkSimFixes asserts that seqs run 1..n without a gap and that each record is the simulator's fix of its
// epoch, epochs in order (some may be missing: gpsd reads nothing while it is down).
func checkSimFixes(t *testing.T, a *arrived, sim *nmea.Simulator) {
	t.Helper()
	seqs := make([]uint64, 0, len(a.bySeq))
	for s := range a.bySeq {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	period := time.Duration(float64(time.Second) / sim.Rate)
	prev := -1
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seq %d missing: got %v", i+1, seqs)
		}
		r := a.bySeq[s]
		epoch := int(r.TS.Sub(sim.Fix(0).Time) / period)
		want := sim.Fix(epoch)
		if !want.Time.Equal(r.TS) || diff(want.Lat, r.Lat) > 1e-6 || diff(want.Lon, r.Lon) > 1e-6 {
			t.Fatalf("seq %d: record %+v is not simulated epoch %d %+v", s, r, epoch, want)
		}
		if epoch <= prev {
			t.Fatalf("seq %d is epoch %d, after epoch %d", s, epoch, prev)
		}
		prev = epoch
	}
}

func diff(a, b float64) float64 {
	if a > b {
		return a - b
	}
	return b - a
}

// The agent reads the receiver through a real gpsd; gpsd stops and comes back mid-run: the agent reconnects by
// itself (no restart), status says unavailable meanwhile, and the fixes that reach Kinesis are the receiver's.
func TestGpsdEndToEnd(t *testing.T) {
	const stream = "gpsd"
	k := uplinktest.StartKinesisMock(t, stream, 1)
	f := newFeeder(t, 5)
	port := gpsdtest.FreePort(t)
	g := gpsdtest.Start(t, port, f.path)
	cfg := receiverConfig(t, `gpsd = "`+g.Addr+`"`, k.Endpoint, stream)
	agent := startAgent(t, "run", "--config", cfg)
	f.start()
	waitFor(t, agent, k, stream, 60*time.Second, "fixes through gpsd", func(a *arrived) bool { return len(a.bySeq) >= 10 })
	st := agentStatus(t, cfg)
	if l := st.Agent.Receiver.Link; l.Source != "gpsd" || l.State != nmea.LinkOpen || l.Gpsd == nil || len(l.Gpsd.Devices) != 1 {
		t.Errorf("status with gpsd up: %+v", l)
	}

	g.Stop()
	st = waitLink(t, agent, cfg, nmea.LinkUnavailable)
	if st.Agent.Receiver.Link.LastError == "" {
		t.Errorf("no error in the status while gpsd is down: %+v", st.Agent.Receiver.Link)
	}
	var text strings.Builder
	st.writeText(&text)
	if !strings.Contains(text.String(), "UNAVAILABLE") {
		t.Errorf("status text does not say gpsd is unavailable:\n%s", text.String())
	}
	n := len(waitFor(t, agent, k, stream, 30*time.Second, "", func(*arrived) bool { return true }).bySeq)

	gpsdtest.Start(t, port, f.path)
	waitFor(t, agent, k, stream, 60*time.Second, "fixes after gpsd came back", func(a *arrived) bool { return len(a.bySeq) >= n+10 })
	st = waitLink(t, agent, cfg, nmea.LinkOpen)
	if st.Agent.Receiver.Counters.Reconnects < 1 {
		t.Errorf("reconnects %d after gpsd's restart", st.Agent.Receiver.Counters.Reconnects)
	}
	f.pause()
	agent.stop(t)
	a := waitFor(t, nil, k, stream, 30*time.Second, "every fix", func(a *arrived) bool { return len(missingSeqs(a)) == 0 })
	checkSimFixes(t, a, &f.sim)
}

// The agent reads a modem's GNSS engine: silent until AT+QGPS=1, which the agent sends on the AT port when it
// opens the NMEA port; the modem resets (both ports recreated, the engine stopped) and the agent starts it again.
func TestModemEndToEnd(t *testing.T) {
	const stream = "modem"
	testExecutable(t)
	k := uplinktest.StartKinesisMock(t, stream, 1)
	m := startSimModem(t, 5)
	cfg := receiverConfig(t, `device = "`+m.NMEAPath()+`"
[receiver.at]
device = "`+m.ATPath()+`"
init = ["AT+QGPS=1"]`, k.Endpoint, stream)
	agent := startAgent(t, "run", "--config", cfg)
	waitFor(t, agent, k, stream, 60*time.Second, "fixes from the modem", func(a *arrived) bool { return len(a.bySeq) >= 10 })
	st := agentStatus(t, cfg)
	if at := st.Agent.Receiver.Link.AT; at == nil || at.Rounds < 1 || len(at.Results) != 1 || !at.Results[0].OK {
		t.Errorf("status after start: modem %+v", at)
	}

	m.Reset()
	<-m.Ready()
	n := len(waitFor(t, agent, k, stream, 30*time.Second, "", func(*arrived) bool { return true }).bySeq)
	waitFor(t, agent, k, stream, 60*time.Second, "fixes after the modem reset", func(a *arrived) bool { return len(a.bySeq) >= n+10 })
	if c := countCommands(m.Commands(), "AT+QGPS=1"); c < 2 {
		t.Errorf("AT+QGPS=1 sent %d times, want again after the reset", c)
	}
	st = agentStatus(t, cfg)
	var text strings.Builder
	st.writeText(&text)
	if !strings.Contains(text.String(), "AT+QGPS=1 -> ") {
		t.Errorf("status text does not show the modem's answers:\n%s", text.String())
	}
	agent.stop(t)
}

func countCommands(cmds []string, cmd string) int {
	n := 0
	for _, c := range cmds {
		if c == cmd {
			n++
		}
	}
	return n
}
