package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

const (
	unitFile    = "../systemd/gps-agent.service"
	udevFile    = "../systemd/99-gps-agent.rules"
	exampleFile = "../systemd/config.example.toml"
)

// The unit's hardening score: `systemd-analyze security` rates exposure from 0 (locked down) to 10.
func TestUnitSecurityExposure(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd): the unit's exposure is not rated")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "security", "--offline=true", "--no-pager", unitFile).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for gps-agent\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	level, _ := strconv.ParseFloat(string(m[1]), 64)
	if level > 2.0 {
		t.Fatalf("exposure %.1f, want at most 2.0:\n%s", level, out)
	}
	t.Logf("exposure %.1f", level)
}

// unitDirectives reads a unit file into its directives (a directive set twice keeps every value).
func unitDirectives(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' || l[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("unit line %q", l)
		}
		d[k] = append(d[k], v)
	}
	return d
}

// The unit matches the program: notify protocol, the directories the defaults point at, a serial group.
func TestUnitMatchesTheProgram(t *testing.T) {
	d := unitDirectives(t)
	def := DefaultConfig()
	tests := []struct{ key, want string }{
		{"Type", "notify"},
		{"ExecStart", "/usr/bin/gps-agent run --config /etc/gps-agent/config.toml"},
		{"ExecCondition", "/usr/bin/gps-agent config check --config /etc/gps-agent/config.toml"},
		{"User", "gps-agent"},
		{"SupplementaryGroups", "dialout"},
		{"StateDirectory", strings.TrimPrefix(def.Buffer.Dir, "/var/lib/")},
		{"RuntimeDirectory", strings.TrimPrefix(filepath.Dir(def.StatusSocket), "/run/")},
		{"RuntimeDirectoryMode", "0750"},
		{"ProtectSystem", "strict"},
		{"NoNewPrivileges", "yes"},
		{"KillSignal", "SIGTERM"},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			if got := d[tc.key]; len(got) != 1 || got[0] != tc.want {
				t.Fatalf("%s=%v, want %s", tc.key, got, tc.want)
			}
		})
	}
	// The watchdog period must leave room for the agent's check at half of it.
	wd, err := time.ParseDuration(d["WatchdogSec"][0])
	if err != nil || wd < 10*time.Second {
		t.Errorf("WatchdogSec=%v: %v", d["WatchdogSec"], err)
	}
	// The stop timeout covers the uplink's bounded stop.
	stop, err := time.ParseDuration(d["TimeoutStopSec"][0])
	if err != nil || stop < 2*def.Uplink.StopTimeout.Duration {
		t.Errorf("TimeoutStopSec=%v, want at least twice uplink.stop_timeout", d["TimeoutStopSec"])
	}
	for _, k := range []string{"ListenStream", "ListenDatagram", "PrivateNetwork"} {
		if _, ok := d[k]; ok {
			t.Errorf("%s set: the agent listens on no network port and needs the network", k)
		}
	}
}

// The service may open the serial ports of common gateway SoCs, by their /proc/devices driver names (DeviceAllow=
// char-NAME), and nothing else: i.MX, NXP LPUART, Qualcomm and Jetson UARTs were refused (EPERM) while
// `gps-agent check`, outside the sandbox, passed.
func TestUnitAllowsSerialPorts(t *testing.T) {
	d := unitDirectives(t)
	if got := d["DevicePolicy"]; len(got) != 1 || got[0] != "closed" {
		t.Fatalf("DevicePolicy=%v, want closed", got)
	}
	allowed := map[string]bool{}
	for _, v := range d["DeviceAllow"] {
		name, ok := strings.CutSuffix(v, " rw")
		if !ok || !strings.HasPrefix(name, "char-tty") || strings.ContainsAny(name, "*?[") {
			t.Errorf("DeviceAllow=%s: want char-ttyNAME rw, a serial driver and no glob", v)
		}
		allowed[strings.TrimPrefix(name, "char-")] = true
	}
	for _, name := range []string{"ttyUSB", "ttyACM", "ttyS", "ttyAMA", "ttymxc", "ttyLP", "ttyMSM", "ttyHS", "ttyTHS"} {
		if !allowed[name] {
			t.Errorf("no DeviceAllow=char-%s rw", name)
		}
	}
}

// The udev rule gives receivers a stable /dev/gps0 by USB vendor and product, readable by the dialout group; a
// modem's ports (one USB ID for all) by the interface number too: /dev/gps0 its NMEA port, /dev/gps-at its AT port,
// which ModemManager is told to leave alone.
func TestUdevRule(t *testing.T) {
	data, err := os.ReadFile(udevFile)
	if err != nil {
		t.Fatal(err)
	}
	rule := regexp.MustCompile(`^SUBSYSTEM=="tty", ATTRS\{idVendor\}=="[0-9a-f]{4}", ATTRS\{idProduct\}=="[0-9a-f]{4}", SYMLINK\+="gps0", GROUP="dialout", MODE="0660"$`)
	modemNMEA := regexp.MustCompile(`^SUBSYSTEM=="tty", ATTRS\{idVendor\}=="([0-9a-f]{4})", ATTRS\{idProduct\}=="([0-9a-f]{4})", ATTRS\{bInterfaceNumber\}=="([0-9a-f]{2})", SYMLINK\+="gps0", GROUP="dialout", MODE="0660"$`)
	modemAT := regexp.MustCompile(`^SUBSYSTEM=="tty", ATTRS\{idVendor\}=="([0-9a-f]{4})", ATTRS\{idProduct\}=="([0-9a-f]{4})", ATTRS\{bInterfaceNumber\}=="([0-9a-f]{2})", SYMLINK\+="gps-at", GROUP="dialout", MODE="0660", ENV\{ID_MM_PORT_IGNORE\}="1"$`)
	n, modems := 0, 0
	for i, l := range strings.Split(string(data), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		n++
		// A modem's rule names the interface that nmea's table gives the role (ports names them the same way).
		for re, role := range map[*regexp.Regexp]string{modemNMEA: nmea.RoleNMEA, modemAT: nmea.RoleAT} {
			if m := re.FindStringSubmatch(l); m != nil {
				p := nmea.PortInfo{VID: m[1], PID: m[2], Interface: m[3]}
				if got := nmea.ModemRole(p); got != role {
					t.Errorf("%s:%d: interface %s of %s:%s is %q in nmea's table, the rule makes it %s", udevFile, i+1, m[3], m[1], m[2], got, role)
				}
				modems++
			}
		}
		if !rule.MatchString(l) && !modemNMEA.MatchString(l) && !modemAT.MatchString(l) {
			t.Errorf("%s:%d: %q is not a gps0 rule by vendor and product, nor a modem port's by interface", udevFile, i+1, l)
		}
	}
	if modems == 0 {
		t.Error("no modem rules")
	}
	if n == 0 {
		t.Fatal("no rules")
	}
	if udevadm, err := exec.LookPath("udevadm"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, udevadm, "verify", udevFile).CombinedOutput(); err != nil && !strings.Contains(string(out), "Unknown command") && !strings.Contains(string(out), "unknown command") {
			t.Errorf("udevadm verify: %v\n%s", err, out)
		}
	}
}

// configKeys lists every dotted key of Config, as the TOML decoder reads them.
func configKeys(typ reflect.Type, prefix string) []string {
	var keys []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if key == "" || key == "-" {
			continue
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(Duration{}) {
			keys = append(keys, configKeys(ft, prefix+key+".")...)
			continue
		}
		keys = append(keys, prefix+key)
	}
	return keys
}

// The example config documents every key, and uncommented it is a valid config.
func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	// Uncomment "#key = value" and "#[table]" lines: the result must load, and name every key.
	keyLine := regexp.MustCompile(`^#([a-z_]+ = .*|\[[a-z.]+\])$`)
	var doc strings.Builder
	for _, l := range strings.Split(string(data), "\n") {
		if keyLine.MatchString(l) {
			l = l[1:]
		}
		doc.WriteString(l + "\n")
	}
	lines := keyLines([]byte(doc.String()))
	for _, k := range configKeys(reflect.TypeOf(Config{}), "") {
		if lines[k] == 0 {
			t.Errorf("%s does not document %s", exampleFile, k)
		}
	}
	// gpsd is the alternative to device (never both): the example loads with device.
	loadable := regexp.MustCompile(`(?m)^gpsd = .*$`).ReplaceAllString(doc.String(), "")
	cfg, err := ParseConfig(exampleFile, []byte(loadable))
	if err != nil {
		t.Fatalf("the example, uncommented, does not load: %v", err)
	}
	// Commented lines show the defaults: every key with a default has it in the example.
	def := DefaultConfig()
	cfg.TruckID, cfg.Receiver.Device, cfg.Kinesis = def.TruckID, def.Receiver.Device, def.Kinesis
	cfg.Receiver.AT = def.Receiver.AT // an example of a modem: off by default
	if !reflect.DeepEqual(cfg, def) {
		t.Errorf("the example's values are not the defaults:\n got %+v\nwant %+v", cfg, def)
	}
}
