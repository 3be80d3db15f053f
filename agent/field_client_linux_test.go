//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// watchCreates reports every file created in dir from now on, even one removed again.
func watchCreates(t *testing.T, dir string) func() []string {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE); err != nil {
		t.Fatal(err)
	}
	return func() []string {
		var names []string
		buf := make([]byte, 64<<10)
		for {
			n, err := syscall.Read(fd, buf)
			if errors.Is(err, syscall.EAGAIN) {
				return names
			}
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off+syscall.SizeofInotifyEvent <= n; {
				ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := buf[off+syscall.SizeofInotifyEvent : off+syscall.SizeofInotifyEvent+int(ev.Len)]
				names = append(names, strings.TrimRight(string(name), "\x00"))
				off += syscall.SizeofInotifyEvent + int(ev.Len)
			}
		}
	}
}

// status and fixes never copy the database: a daemon that holds it but does not answer on its socket is an
// error that says how to stop it, at once (no wait on its lock); with no daemon they read the file in place.
func TestStatusAndFixesNeverCopyTheDatabase(t *testing.T) {
	db := writeTestBuffer(t, 5)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	created := watchCreates(t, tmp)
	cfg := filepath.Join(t.TempDir(), "config.toml")
	writeFile(t, cfg, fmt.Sprintf("status_socket = %q\n[buffer]\ndir = %q\n",
		filepath.Join(t.TempDir(), "nobody.sock"), filepath.Dir(db)))
	commands := map[string][]string{
		"status --config": {"status", "--config", cfg, "--json"},
		"fixes --config":  {"fixes", "--config", cfg, "--format", "csv"},
		"status --db":     {"status", "--db", db, "--json"},
		"fixes --db":      {"fixes", "--db", db, "--format", "csv"},
	}

	t.Run("no daemon: read in place", func(t *testing.T) {
		for name, args := range commands {
			code, out, errOut := runCLI(t, nil, args...)
			if code != 0 {
				t.Fatalf("%s: exit %d: %s", name, code, errOut)
			}
			if args[0] == "fixes" {
				if rows := strings.Count(out, "\n"); rows != 6 {
					t.Errorf("%s: %d lines, want header + 5:\n%s", name, rows, out)
				}
				continue
			}
			var st fieldStatus
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				t.Fatal(err)
			}
			if st.Daemon != "stopped" || st.Source != db || st.Buffer.Pending != 5 || st.OldestUnsent == nil || st.OldestUnsent.Seq != 1 {
				t.Errorf("%s: %+v", name, st)
			}
		}
		if names := created(); len(names) > 0 {
			t.Errorf("files created in $TMPDIR: %v", names)
		}
	})

	t.Run("daemon holds the database, no socket", func(t *testing.T) {
		startHolder(t, db)
		for name, args := range commands {
			start := time.Now()
			code, out, errOut := runCLI(t, nil, args...)
			if took := time.Since(start); took > time.Second {
				t.Errorf("%s took %s: it waited on the daemon's lock", name, took)
			}
			if code != 1 || out != "" {
				t.Errorf("%s: exit %d, output %q: want exit 1 and no output", name, code, out)
			}
			for _, want := range []string{"a running daemon holds the buffer " + db, "sudo systemctl stop gps-agent", "/etc/init.d/gps-agent stop"} {
				if !strings.Contains(errOut, want) {
					t.Errorf("%s: stderr %q, want it to say %q", name, errOut, want)
				}
			}
			if strings.HasSuffix(name, "--config") && !strings.Contains(errOut, "nobody.sock") {
				t.Errorf("%s: stderr %q does not name the socket that did not answer", name, errOut)
			}
		}
		if names := created(); len(names) > 0 {
			t.Errorf("files created in $TMPDIR: %v", names)
		}
	})
}
