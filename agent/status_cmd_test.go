package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/uplink/uplinktest"
)

// statusJSON runs `gps-agent status --json` as a technician would and decodes it.
func statusJSON(t *testing.T, cfg string) fieldStatus {
	t.Helper()
	code, out, errOut := runCLI(t, nil, "status", "--config", cfg, "--json")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	var st fieldStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st
}

// pollStatus polls status until cond holds, or fails after timeout.
func pollStatus(t *testing.T, cfg string, timeout time.Duration, what string, cond func(fieldStatus) bool) fieldStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := statusJSON(t, cfg)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last status %+v", timeout, what, st)
		}
		time.Sleep(200 * time.Millisecond) // polling: the status socket has no push
	}
}

// checkOutput runs `gps-agent check` and returns its exit status and verdicts by check name.
func checkOutput(t *testing.T, cfg string) (int, string, map[string]string) {
	t.Helper()
	code, out, errOut := runCLI(t, nil, "check", "--config", cfg, "--listen", "2s")
	verdicts := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && (f[0] == pass || f[0] == warn || f[0] == fail || f[0] == skip) {
			verdicts[f[1]] = f[0]
		}
	}
	return code, out + errOut, verdicts
}

func wantVerdicts(t *testing.T, out string, got map[string]string, want map[string]string) {
	t.Helper()
	for check, v := range want {
		if got[check] != v {
			t.Errorf("check %s: %q, want %s; output:\n%s", check, got[check], v, out)
		}
	}
}

// The field tools as a technician uses them: against a running agent on a pty receiver with local Kinesis, through
// a Kinesis outage (the oldest unsent age grows), with the socket unreachable, and against the stopped agent.
func TestFieldToolsAgainstAgent(t *testing.T) {
	const stream = "field"
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	k := uplinktest.StartKinesisMock(t, stream, 1)
	f := newFeeder(t, 10)
	cfg := writeConfig(t, f.path, k.Endpoint, stream)
	agent := startAgent(t, "run", "--config", cfg)
	f.start()
	waitFor(t, agent, k, stream, 60*time.Second, "first fixes", func(a *arrived) bool { return len(a.bySeq) >= 10 })

	// Running, stream up: status shows the receiver and the last success; check passes.
	st := pollStatus(t, cfg, 30*time.Second, "an acked fix", func(s fieldStatus) bool {
		return s.Agent != nil && s.Agent.Uplink.RecordsAcked > 0
	})
	if st.Daemon != "running" || st.Agent.Receiver.Device != f.path || st.Agent.Receiver.Counters.Sentences == 0 {
		t.Fatalf("status %+v", st)
	}
	if lf := st.Agent.Receiver.LastFix; lf == nil || lf.Quality != 1 || lf.Sats <= 0 || lf.Time.IsZero() {
		t.Errorf("status lacks the receiver's last fix: %+v", lf)
	}
	_, out, _ := runCLI(t, nil, "status", "--config", cfg)
	t.Logf("gps-agent status, running:\n%s", out)
	for _, want := range []string{"running since", f.path, "last sentence", "last fix", "last success", "fixes pending", "gateway - GNSS"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	code, out, v := checkOutput(t, cfg)
	t.Logf("gps-agent check, running:\n%s", out)
	if code != 0 {
		t.Errorf("check exit %d with the agent running and the stream up:\n%s", code, out)
	}
	wantVerdicts(t, out, v, map[string]string{"config": pass, "receiver": pass, "credentials": pass, "stream": pass, "delivery": pass})
	if strings.Contains(out, "local") { // the secret key is "local": check must name the source, never the key
		t.Errorf("check printed a credential:\n%s", out)
	}
	// A stream that does not exist is named.
	bad := writeConfig(t, f.path, k.Endpoint, "no-such-stream")
	code, out, v = checkOutput(t, bad)
	if code != 1 || !strings.Contains(out, "stream no-such-stream not found") {
		t.Errorf("check of a missing stream: exit %d:\n%s", code, out)
	}
	wantVerdicts(t, out, v, map[string]string{"stream": fail})

	// Stream down: fixes pile up, the oldest unsent age grows, check fails on delivery.
	k.Stop()
	s1 := pollStatus(t, cfg, 60*time.Second, "a failed call with fixes pending", func(s fieldStatus) bool {
		u := s.Agent.Uplink
		return s.Buffer.Pending > 0 && u.LastErrorTime.After(u.LastSuccess) && s.OldestUnsent != nil
	})
	age1 := s1.Now.Sub(s1.Buffer.OldestAppended)
	s2 := pollStatus(t, cfg, 10*time.Second, "the oldest unsent age to grow by a second", func(s fieldStatus) bool {
		return s.Now.Sub(s.Buffer.OldestAppended) >= age1+time.Second
	})
	if s2.OldestUnsent.Seq != s1.OldestUnsent.Seq || !s2.Buffer.OldestAppended.Equal(s1.Buffer.OldestAppended) ||
		s2.Buffer.Pending <= s1.Buffer.Pending {
		t.Errorf("offline: oldest unsent %d (%v) then %d (%v), pending %d then %d: want the same oldest and more pending",
			s1.OldestUnsent.Seq, s1.Buffer.OldestAppended, s2.OldestUnsent.Seq, s2.Buffer.OldestAppended, s1.Buffer.Pending, s2.Buffer.Pending)
	}
	_, out, _ = runCLI(t, nil, "status", "--config", cfg)
	t.Logf("gps-agent status, stream down:\n%s", out)
	if !strings.Contains(out, "oldest unsent: seq") || !strings.Contains(out, "last error") {
		t.Errorf("offline status output:\n%s", out)
	}
	code, out, v = checkOutput(t, cfg)
	t.Logf("gps-agent check, stream down:\n%s", out)
	if code != 1 {
		t.Errorf("check exit %d with the stream down, want 1:\n%s", code, out)
	}
	wantVerdicts(t, out, v, map[string]string{"receiver": pass, "stream": fail, "delivery": fail})

	// fixes from the running daemon: what is pending, oldest first.
	code, out, errOut := runCLI(t, nil, "fixes", "--config", cfg, "--format", "json")
	if code != 0 {
		t.Fatalf("fixes: exit %d: %s", code, errOut)
	}
	running := parseFixesOutputAny(t, out)
	if len(running) < s2.Buffer.Pending || running[0] != s2.OldestUnsent.Seq {
		t.Errorf("fixes from the daemon: %d fixes from seq %v, want at least %d from %d", len(running), running, s2.Buffer.Pending, s2.OldestUnsent.Seq)
	}

	// The socket does not answer (wrong path, or permissions): status and fixes neither wait on the daemon's lock
	// nor copy its database; they say that it runs and how to stop it.
	t.Run("socket unreachable", func(t *testing.T) {
		t.Setenv("GPS_AGENT_STATUS_SOCKET", filepath.Join(t.TempDir(), "elsewhere.sock"))
		for _, cmd := range []string{"status", "fixes"} {
			start := time.Now()
			code, _, errOut := runCLI(t, nil, cmd, "--config", cfg)
			if took := time.Since(start); took > 1500*time.Millisecond {
				t.Errorf("%s took %s: it waited on the daemon's lock", cmd, took)
			}
			if code != 1 || !strings.Contains(errOut, "a running daemon holds the buffer") || !strings.Contains(errOut, "systemctl stop gps-agent") {
				t.Errorf("%s with the socket unreachable: exit %d: %s", cmd, code, errOut)
			}
		}
	})

	// Stopped: status and fixes read the database; the backlog is there.
	f.pause()
	agent.stop(t)
	st = statusJSON(t, cfg)
	if st.Daemon != "stopped" || st.Agent != nil || st.Buffer.Pending == 0 || st.OldestUnsent == nil {
		t.Fatalf("status of the stopped agent: %+v", st)
	}
	_, out, _ = runCLI(t, nil, "status", "--config", cfg)
	if !strings.Contains(out, "daemon stopped") || !strings.Contains(out, "oldest unsent: seq") {
		t.Errorf("stopped status output:\n%s", out)
	}
	code, out, errOut = runCLI(t, nil, "fixes", "--config", cfg, "--format", "geojson")
	if code != 0 {
		t.Fatalf("fixes of the stopped agent: exit %d: %s", code, errOut)
	}
	if got := parseGeoJSON(t, out); len(got) != st.Buffer.Pending || got[0] != st.OldestUnsent.Seq {
		t.Errorf("fixes of the stopped agent: %d from %v, want %d from %d", len(got), got, st.Buffer.Pending, st.OldestUnsent.Seq)
	}

	// check with the daemon stopped opens the receiver itself; with the stream back everything passes.
	f.start()
	k.Start()
	code, out, v = checkOutput(t, cfg)
	if code != 0 {
		t.Errorf("check of the stopped agent with receiver and stream up: exit %d:\n%s", code, out)
	}
	wantVerdicts(t, out, v, map[string]string{"receiver": pass, "stream": pass, "credentials": pass, "config": pass})
	if _, ok := v["delivery"]; ok {
		t.Errorf("check reported delivery without a daemon:\n%s", out)
	}
	f.pause()
}

// parseFixesOutputAny parses `fixes --format json` of any truck.
func parseFixesOutputAny(t *testing.T, out string) []uint64 {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(out), &raws); err != nil {
		t.Fatalf("fixes --format json: %v\n%s", err, out)
	}
	seqs := make([]uint64, len(raws))
	for i, raw := range raws {
		r, err := parseRecord(raw) // the records as stored, of either schema version
		if err != nil {
			t.Fatalf("fixes --format json: %v\n%s", err, raw)
		}
		seqs[i] = r.Seq
	}
	return seqs
}
