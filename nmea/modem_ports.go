package nmea

import (
	"os"
	"path/filepath"
	"strings"
)

// Port roles of a cellular modem's serial ports ([PortInfo.Role]).
const (
	RoleNMEA  = "nmea" // the GNSS engine's NMEA: [receiver] device
	RoleAT    = "at"   // the primary AT port: [receiver.at] device
	RoleAT2   = "at2"  // a second AT port (often PPP's, or ModemManager's second)
	RoleDiag  = "diag" // Qualcomm's diagnostic port: never open it
	sysfsRoot = "/sys" // where Linux shows devices
)

// modemLayout is which USB interface of a modem model is which port. All the
// ports of one modem share its USB ID, and ttyUSB numbers move with the order
// devices appear in, so the interface number is what names a port.
type modemLayout struct {
	vid, pid, model string
	roles           map[string]string // interface number (two hex digits) -> role
}

// The layouts are ModemManager's port hints (its 77-mm-*-port-types.rules),
// for the default USB composition of each model.
var (
	quectelPorts = map[string]string{"00": RoleDiag, "01": RoleNMEA, "02": RoleAT, "03": RoleAT2}
	sierraPorts  = map[string]string{"00": RoleDiag, "02": RoleNMEA, "03": RoleAT}
	telitPorts   = map[string]string{"00": RoleDiag, "03": RoleNMEA, "04": RoleAT, "05": RoleAT2}
	telitMBIM    = map[string]string{"00": RoleDiag, "04": RoleNMEA, "05": RoleAT, "06": RoleAT2}

	modemLayouts = []modemLayout{
		{"2c7c", "0125", "Quectel EC25/EG25", quectelPorts},
		{"2c7c", "0121", "Quectel EC21", quectelPorts},
		{"2c7c", "0191", "Quectel EG91", quectelPorts},
		{"2c7c", "0195", "Quectel EG95", quectelPorts},
		{"2c7c", "0296", "Quectel BG96", quectelPorts},
		{"2c7c", "0306", "Quectel EG06/EP06/EM06", quectelPorts},
		{"2c7c", "0512", "Quectel EG12/EG18/EM12", quectelPorts},
		{"2c7c", "0800", "Quectel RM500Q", quectelPorts},
		{"1199", "9071", "Sierra Wireless MC7455/EM7455", sierraPorts},
		{"1199", "9091", "Sierra Wireless EM7565", sierraPorts},
		{"1bc7", "1201", "Telit LE910Cx", telitPorts},
		{"1bc7", "1204", "Telit LE910Cx (MBIM)", telitMBIM},
		{"1bc7", "1060", "Telit LN920", telitPorts},
		{"1bc7", "1070", "Telit FN990", telitPorts},
	}
)

// identify adds what sysfs under root says of p's USB interface: its number,
// and the IDs when the enumerator gave none; then, for a known modem, the
// model and the port's role. It reads files only, never opens the port.
func identify(root string, p *PortInfo) {
	dev, err := filepath.EvalSymlinks(filepath.Join(root, "class", "tty", filepath.Base(p.Name), "device"))
	if err != nil {
		return
	}
	for d := dev; strings.HasPrefix(d, root) && d != root; d = filepath.Dir(d) {
		if p.Interface == "" {
			p.Interface = sysAttr(d, "bInterfaceNumber")
		}
		if vid := sysAttr(d, "idVendor"); vid != "" {
			p.USB = true
			if p.VID == "" {
				p.VID, p.PID = strings.ToLower(vid), strings.ToLower(sysAttr(d, "idProduct"))
			}
			if p.Product == "" {
				p.Product = sysAttr(d, "product")
			}
			break
		}
	}
	for _, m := range modemLayouts {
		if m.vid == p.VID && m.pid == p.PID {
			p.Modem = m.model
		}
	}
	p.Role = ModemRole(*p)
}

// sysAttr reads one sysfs attribute, "" when absent.
func sysAttr(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// IdentifyPort fills in p's USB identity, interface number and modem role
// from sysfs, for a port named by the user (a udev symlink such as /dev/gps0
// is followed to its ttyUSB). Fields already set are kept.
func IdentifyPort(p *PortInfo) {
	q := *p
	if real, err := filepath.EvalSymlinks(p.Name); err == nil {
		q.Name = real
	}
	identify(sysfsRoot, &q)
	q.Name = p.Name
	*p = q
}

// ModemRole is the role of interface p.Interface on the known modem p.VID:p.PID, "" when either is unknown.
func ModemRole(p PortInfo) string {
	for _, m := range modemLayouts {
		if m.vid == p.VID && m.pid == p.PID {
			return m.roles[p.Interface]
		}
	}
	return ""
}
