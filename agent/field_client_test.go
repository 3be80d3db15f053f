package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/buffer"
)

// holdEnv makes the test binary a daemon-like process (see TestMain): it opens the buffer database the variable
// names, as the daemon does (bbolt's exclusive lock), serves no socket, prints "held" and keeps the database
// until its stdin closes.
const holdEnv = "GPS_AGENT_TEST_HOLD_BUFFER"

// holdBuffer is the daemon-like process's main.
func holdBuffer(path string) {
	b, err := buffer.Open(path, buffer.DefaultOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("held")
	io.Copy(io.Discard, os.Stdin)
	b.Close()
}

// startHolder runs a daemon-like process holding the buffer at path until the test ends.
func startHolder(t *testing.T, path string) {
	t.Helper()
	cmd := exec.Command(testExecutable(t))
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if line != "held\n" {
			done <- fmt.Errorf("holder said %q: %s", line, stderr.String())
		}
		close(done)
	}()
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("holder: %v: %s", err, stderr.String())
		}
	})
	select {
	case err := <-done:
		if err != nil {
			cmd.Process.Kill()
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("holder did not open the buffer within 10 s")
	}
}
