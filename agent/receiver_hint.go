package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"go.bug.st/serial"
	"golang.org/x/sys/unix"
)

// receiverLog wraps the receiver's logger so that a permission error opening the device carries a hint naming the
// drop-in that fixes it. nmea knows serial ports, not systemd: the agent adds what the service's sandbox means.
// `gps-agent check` runs outside the sandbox, so only the daemon's log can say this.
func receiverLog(log *slog.Logger, device string) *slog.Logger {
	return slog.New(hintHandler{Handler: log.Handler(), device: device})
}

// hintHandler adds a "hint" attribute to records whose "err" is a permission error.
type hintHandler struct {
	slog.Handler
	device string
}

func (h hintHandler) Handle(ctx context.Context, r slog.Record) error {
	var hint string
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && a.Key == "err" {
			hint = permissionHint(h.device, err)
			return false
		}
		return true
	})
	if hint != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("hint", hint))
	}
	return h.Handler.Handle(ctx, r)
}

func (h hintHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return hintHandler{Handler: h.Handler.WithAttrs(as), device: h.device}
}

func (h hintHandler) WithGroup(name string) slog.Handler {
	return hintHandler{Handler: h.Handler.WithGroup(name), device: h.device}
}

// permissionHint says how to let the service open device, or "" when err is not about permission. EPERM is the
// device cgroup (the unit's DevicePolicy=closed allows the listed kinds of tty only); EACCES is the file's mode
// and group.
func permissionHint(device string, err error) string {
	real := device
	if p, err := filepath.EvalSymlinks(device); err == nil {
		real = p
	}
	switch {
	case errors.Is(err, syscall.EPERM):
		return fmt.Sprintf("the service's device allow-list does not include %s: %s", real, deviceAllowHint(real, charGroup(real)))
	case isPermission(err):
		group := "its group (ls -l " + real + ")"
		if g := fileGroup(real); g != "" {
			group = g
		}
		return fmt.Sprintf("the gps-agent user may not open %s (it is in dialout): run `sudo systemctl edit gps-agent`, "+
			"add the lines [Service] and SupplementaryGroups=%s, then `sudo systemctl restart gps-agent`", real, group)
	}
	return ""
}

// isPermission reports a permission error opening a device, in either shape nmea passes it on: a wrapped errno
// (EPERM, EACCES), or go.bug.st/serial's PortError, which replaces EACCES and wraps nothing.
func isPermission(err error) bool {
	var pe *serial.PortError
	return errors.Is(err, fs.ErrPermission) || errors.As(err, &pe) && pe.Code() == serial.PermissionDenied
}

// charGroup is the /proc/devices driver name of the character device at path ("ttymxc"), as DeviceAllow=char-
// takes it; "" when unknown (the unit's ProcSubset=pid hides /proc/devices from the service). Of the names that
// share its major number (4: tty and ttyS), the one the device's name starts with.
func charGroup(path string) string {
	names := charGroups(path)
	best := ""
	for _, n := range names {
		if strings.HasPrefix(filepath.Base(path), n) && len(n) > len(best) {
			best = n
		}
	}
	if best == "" && len(names) == 1 {
		best = names[0]
	}
	return best
}

// charGroups lists the /proc/devices driver names of the major number of the character device at path: systemd
// allows every minor of a major whose name matches DeviceAllow=char-NAME.
func charGroups(path string) []string {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	major := int64(unix.Major(uint64(st.Rdev)))
	f, err := os.Open("/proc/devices")
	if err != nil {
		return nil
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() { // "Character devices:" then "  4 ttyS" lines, until "Block devices:"
		if strings.HasPrefix(sc.Text(), "Block") {
			break
		}
		num, name, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if n, err := strconv.ParseInt(num, 10, 64); ok && err == nil && n == major && !strings.Contains(name, "/") {
			names = append(names, name)
		}
	}
	return names
}

// fileGroup is the name of path's group, "" when unknown.
func fileGroup(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	g, err := user.LookupGroupId(strconv.FormatUint(uint64(st.Gid), 10))
	if err != nil {
		return ""
	}
	return g.Name
}
