package main

import (
	"path/filepath"
	"testing"
)

// READY=1 does not wait for the receiver (the unit's comment says so): with no receiver at all the agent is ready,
// so that its backlog goes out and systemd does not time the start out.
func TestReadyWithoutTheReceiver(t *testing.T) {
	notified := listenNotify(t)
	device := filepath.Join(t.TempDir(), "ttyUSB7") // never there
	agent := startAgent(t, "run", "--config", writeConfig(t, device, "http://127.0.0.1:9", "s"))
	notified(agent, "READY=1")
	agent.waitLog(t, "open receiver "+device+": ")
	agent.stop(t)
}
