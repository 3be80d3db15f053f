package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/fleetedge/gps-agent/buffer"
	toml "github.com/pelletier/go-toml/v2"
)

// dialTimeout bounds connecting to the daemon's socket: it is local, so anything slower is a stuck daemon.
const controlDialTimeout = 2 * time.Second

// askDaemon sends req to the daemon at path and returns the connection to read the reply from. errNoDaemon
// (wrapped) when nobody listens; other errors, such as permission denied, are returned as they are.
func askDaemon(ctx context.Context, path string, req controlRequest) (net.Conn, error) {
	d := net.Dialer{Timeout: controlDialTimeout}
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w: %s", errNoDaemon, path)
		}
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("status socket %s: %w (hint: add yourself to the agent's group: sudo usermod -aG gps-agent $USER, then log in again; or use sudo)", path, err)
		}
		return nil, fmt.Errorf("status socket %s: %w", path, err)
	}
	line, _ := json.Marshal(req)
	conn.SetWriteDeadline(time.Now().Add(controlDialTimeout))
	if _, err := conn.Write(append(line, '\n')); err != nil {
		conn.Close()
		return nil, fmt.Errorf("status socket %s: send request: %w", path, err)
	}
	return conn, nil
}

// daemonStatus asks the running daemon for its status.
func daemonStatus(ctx context.Context, path string) (fieldStatus, error) {
	conn, err := askDaemon(ctx, path, controlRequest{Op: "status"})
	if err != nil {
		return fieldStatus{}, err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(readTimeout))
	var st fieldStatus
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return st, fmt.Errorf("status socket %s: read reply: %w", path, err)
	}
	if err := json.Unmarshal(line, &st); err != nil {
		return st, fmt.Errorf("status socket %s: decode reply: %w", path, err)
	}
	if st.Daemon == "" { // an error line
		var e fixLine
		json.Unmarshal(line, &e)
		return st, fmt.Errorf("status socket %s: %s", path, e.Error)
	}
	st.Source = path
	return st, nil
}

// daemonFixes streams the running daemon's buffered fixes to fn.
func daemonFixes(ctx context.Context, path string, req controlRequest, fn func(buffer.Record) error) error {
	req.Op = "fixes"
	conn, err := askDaemon(ctx, path, req)
	if err != nil {
		return err
	}
	defer conn.Close()
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for {
		conn.SetReadDeadline(time.Now().Add(writeTimeout + readTimeout))
		if !sc.Scan() {
			err := sc.Err()
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("status socket %s: read fixes: %w", path, err)
		}
		var l fixLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("status socket %s: decode fixes: %w", path, err)
		}
		switch {
		case l.Error != "":
			return fmt.Errorf("daemon: %s", l.Error)
		case l.End:
			return nil
		}
		if err := fn(buffer.Record{Data: l.Fix, Appended: l.Appended}); err != nil {
			return err
		}
	}
}

// openBufferInPlace opens the buffer database at path read-only, where it lies. It never copies the file: a
// full buffer is about 200 MiB, $TMPDIR is RAM on OpenWrt, and a copy taken while the daemon commits can be torn
// in ways bbolt does not notice (it checksums only its meta pages). It never waits on the daemon's lock either:
// a daemon holding the file (bbolt's exclusive lock, asked without waiting) is a *daemonHoldsError saying how to
// stop it. socket and socketErr are the socket asked and why it did not answer, for that message; "" and nil with
// --db.
func openBufferInPlace(path, socket string, socketErr error) (*buffer.Buffer, error) {
	held, err := lockedByOther(path)
	if err != nil {
		return nil, err
	}
	if held {
		return nil, &daemonHoldsError{DB: path, Socket: socket, Err: socketErr}
	}
	b, err := buffer.OpenReadOnly(path, buffer.DefaultOptions())
	if err != nil {
		// A daemon that started since the check above makes the read-only open time out on its lock.
		if held, _ := lockedByOther(path); held {
			return nil, &daemonHoldsError{DB: path, Socket: socket, Err: socketErr}
		}
		return nil, err
	}
	return b, nil
}

// lockedByOther reports whether another process holds an exclusive lock on the file (bbolt's writer lock: a
// running daemon). It asks without waiting.
func lockedByOther(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("open buffer read-only: %w", err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("lock buffer %s: %w", path, err)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false, nil
}

// stoppedStatus is the status of a stopped daemon: what its database holds. socket and socketErr are the socket
// asked and why it did not answer ("" and nil with --db): the error names them when a daemon holds the database.
func stoppedStatus(dbPath, socket string, socketErr error) (fieldStatus, error) {
	b, err := openBufferInPlace(dbPath, socket, socketErr)
	if err != nil {
		return fieldStatus{}, err
	}
	defer b.Close()
	st := fieldStatus{Daemon: "stopped", Source: dbPath, Now: time.Now(), Buffer: b.Stats()}
	oldest, _ := b.Oldest(0, 1)
	newest, _ := b.Newest(1)
	st.readRecords(oldest, newest)
	return st, nil
}

// fieldConfig reads what status and fixes need from the config: the socket and the buffer directory. Unlike
// LoadConfig it does not insist on the keys only the daemon needs (truck_id may live in the unit's environment
// file, which a technician's shell does not have), and a missing file means the defaults: the tools still find a
// packaged daemon. Environment overrides apply as for the daemon.
func fieldConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return cfg, fmt.Errorf("read config: %w", err)
	default:
		if err := toml.Unmarshal(data, &cfg); err != nil {
			return cfg, tomlError(path, data, err)
		}
	}
	if err := applyEnv(&cfg, os.LookupEnv); err != nil {
		return cfg, err
	}
	return cfg, nil
}
