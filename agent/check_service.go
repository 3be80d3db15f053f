package main

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// unitDirs are where systemd reads gps-agent.service and its drop-ins, the highest precedence first.
var unitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
	"/lib/systemd/system", "/usr/lib/systemd/system"}

const unitName = "gps-agent.service"

// checkServiceDevice says whether the installed unit lets the service open the receiver. check runs outside the
// service's sandbox, so its receiver line passes even where the service gets EPERM (DevicePolicy=closed allows
// the listed kinds of tty only). ok is false when no unit is installed (OpenWrt, a workstation).
func checkServiceDevice(device string, dirs []string) (v verdict, ok bool) {
	policy, allow, ok := unitDeviceAccess(dirs)
	if !ok {
		return verdict{}, false
	}
	v = verdict{Check: "service"}
	real := device
	if p, err := filepath.EvalSymlinks(device); err == nil {
		real = p
	}
	group, groups := charGroup(real), charGroups(real)
	if policy != "closed" && policy != "strict" && (policy != "auto" || len(allow) == 0) {
		v.Result, v.Detail = pass, fmt.Sprintf("the unit lets the service open any device (DevicePolicy=%s)", policy)
		return v, true
	}
	for _, a := range allow {
		name, _, _ := strings.Cut(a, " ")
		glob, isGroup := strings.CutPrefix(name, "char-")
		matched := name == device || name == real
		for _, g := range groups {
			if m, _ := path.Match(glob, g); isGroup && m {
				matched = true
			}
		}
		if matched {
			v.Result, v.Detail = pass, fmt.Sprintf("the unit allows %s (DeviceAllow=%s)", real, a)
			return v, true
		}
	}
	driver := ""
	if group != "" {
		driver = " (driver " + group + ")"
	}
	v.Result = warn
	v.Detail = fmt.Sprintf("the unit does not allow %s%s: under systemd the service gets EPERM opening it", real, driver)
	v.Hint = deviceAllowHint(real, group)
	return v, true
}

// deviceAllowHint is the drop-in that lets the service open real (a device path, symlinks resolved); group is its
// /proc/devices driver name, "" when unknown.
func deviceAllowHint(real, group string) string {
	allow := "DeviceAllow=" + real + " rw"
	if group != "" {
		allow = fmt.Sprintf("DeviceAllow=char-%s rw (every %s port; or DeviceAllow=%s rw)", group, group, real)
	}
	return fmt.Sprintf("run `sudo systemctl edit gps-agent`, add the lines [Service] and %s, then `sudo systemctl restart gps-agent`", allow)
}

// unitDeviceAccess reads DevicePolicy= and DeviceAllow= of the installed unit as systemd does: the unit file of the
// highest-precedence directory, then the drop-ins of every directory in name order (a name in a higher directory
// hides the same name below); an empty DeviceAllow= clears the list.
func unitDeviceAccess(dirs []string) (policy string, allow []string, ok bool) {
	var files []string
	for _, d := range dirs {
		if p := filepath.Join(d, unitName); fileExists(p) {
			files = append(files, p)
			break
		}
	}
	if len(files) == 0 {
		return "", nil, false
	}
	dropIns := map[string]string{}
	for i := len(dirs) - 1; i >= 0; i-- { // higher directories overwrite
		matches, _ := filepath.Glob(filepath.Join(dirs[i], unitName+".d", "*.conf"))
		for _, m := range matches {
			dropIns[filepath.Base(m)] = m
		}
	}
	names := make([]string, 0, len(dropIns))
	for n := range dropIns {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		files = append(files, dropIns[n])
	}
	policy = "auto"
	for _, f := range files {
		for k, v := range serviceDirectives(f) {
			switch k {
			case "DevicePolicy":
				policy = v
			case "DeviceAllow":
				if v == "" {
					allow = nil
				} else {
					allow = append(allow, v)
				}
			}
		}
	}
	return policy, allow, true
}

// serviceDirectives yields the key=value lines of a unit file's [Service] section, in order.
func serviceDirectives(file string) func(yield func(string, string) bool) {
	return func(yield func(string, string) bool) {
		f, err := os.Open(file)
		if err != nil {
			return
		}
		defer f.Close()
		section := ""
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			switch {
			case l == "" || l[0] == '#' || l[0] == ';':
			case l[0] == '[':
				section = l
			case section == "[Service]":
				k, v, _ := strings.Cut(l, "=")
				if !yield(strings.TrimSpace(k), strings.TrimSpace(v)) {
					return
				}
			}
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
