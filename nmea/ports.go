package nmea

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.bug.st/serial/enumerator"
)

// PortInfo is one serial port of the machine as the operating system lists it.
type PortInfo struct {
	Name         string `json:"name"`                    // device path, e.g. /dev/ttyUSB0
	USB          bool   `json:"usb"`                     // a USB serial adapter or USB CDC receiver
	VID          string `json:"vid,omitempty"`           // USB vendor ID, lowercase hex (udev's ATTRS{idVendor})
	PID          string `json:"pid,omitempty"`           // USB product ID, lowercase hex (udev's ATTRS{idProduct})
	SerialNumber string `json:"serial_number,omitempty"` // USB iSerial, when the device has one
	Manufacturer string `json:"manufacturer,omitempty"`  // USB iManufacturer
	Product      string `json:"product,omitempty"`       // USB iProduct, e.g. "u-blox GNSS receiver"
	// Interface is the USB interface number, two hex digits (udev's ATTRS{bInterfaceNumber}): what tells the
	// ports of one modem apart, since they share its USB ID.
	Interface string `json:"interface,omitempty"`
	Modem     string `json:"modem,omitempty"` // a known cellular modem's model (modem_ports.go)
	Role      string `json:"role,omitempty"`  // on a known modem: RoleNMEA, RoleAT, RoleAT2 or RoleDiag
}

// ListPorts lists the machine's serial ports with their USB identity. On
// Linux it reads sysfs only: it never opens a port, so it is safe while the
// daemon reads the receiver. Pseudo-terminals are not listed.
func ListPorts() ([]PortInfo, error) {
	list, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	out := make([]PortInfo, 0, len(list))
	for _, p := range list {
		pi := PortInfo{Name: p.Name, USB: p.IsUSB, VID: strings.ToLower(p.VID), PID: strings.ToLower(p.PID),
			SerialNumber: p.SerialNumber, Manufacturer: p.Manufacturer, Product: p.Product}
		identify(sysfsRoot, &pi)
		out = append(out, pi)
	}
	slices.SortFunc(out, func(a, b PortInfo) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

// ProbeRates returns the rates Probe tries when given none: the common
// GNSS receiver rates, the most common first.
func ProbeRates() []int { return slices.Clone(probeRates[:]) }

// ProbeResult says what a port sent while Probe listened.
type ProbeResult struct {
	Device    string `json:"device"`
	NMEA      bool   `json:"nmea"`           // checksummed NMEA sentences arrived
	Baud      int    `json:"baud,omitempty"` // the rate they arrived at; 0 if none did
	Sentences uint64 `json:"sentences"`      // checksummed sentences at Baud (parsed or not)
	Fixes     uint64 `json:"fixes"`          // fixes assembled at Baud
	NoFix     uint64 `json:"no_fix"`         // epochs without a position (no satellites yet, antenna)
	// Quality and Sats are the last fix's (0 and -1 without a fix); FixTime its GNSS time and Heard the gateway
	// clock when it was assembled, to compare the two clocks.
	Quality int       `json:"quality"`
	Sats    int       `json:"sats"`
	FixTime time.Time `json:"fix_time,omitzero"`
	Heard   time.Time `json:"heard,omitzero"`
	// LastFix is the last fix itself (NaN for unknown values, so not in JSON).
	LastFix *Fix `json:"-"`
}

// Probe listens to device at each rate in turn (ProbeRates when rates is
// empty) for up to listen, and stops at the first rate where checksummed
// sentences arrive; there it keeps listening for the rest of listen to see
// whether a fix is assembled. A port that cannot be opened is an error
// naming it; a port that sends nothing NMEA is a result with NMEA false.
//
// The port is opened exclusively: probing the daemon's receiver fails while
// the daemon runs. Each rate costs up to listen; at least 1.5 s is needed to
// hear a 1 Hz receiver.
func Probe(ctx context.Context, device string, rates []int, listen time.Duration) (ProbeResult, error) {
	if len(rates) == 0 {
		rates = probeRates[:]
	}
	res := ProbeResult{Device: device, Sats: -1}
	for _, baud := range rates {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("probe %s: %w", device, err)
		}
		r, err := probeRate(ctx, device, baud, listen)
		if err != nil {
			return res, err
		}
		if r.NMEA {
			return r, nil
		}
	}
	return res, nil
}

// probeRate listens at one rate.
func probeRate(ctx context.Context, device string, baud int, listen time.Duration) (ProbeResult, error) {
	port, err := OpenPort(device, baud)
	if err != nil {
		return ProbeResult{Device: device, Sats: -1}, fmt.Errorf("probe: %w", err)
	}
	// A read blocks at most readTimeout (OpenPort sets it), so closing from
	// here is never needed to unblock it; close when done.
	defer port.Close()
	res, err := listenFor(ctx, port, listen)
	res.Device = device
	if err != nil {
		return res, fmt.Errorf("probe %s at %d baud: %w", device, baud, err)
	}
	if res.NMEA {
		res.Baud = baud
	}
	return res, nil
}

// listenFor reads port, whose reads return at least every readTimeout, until
// a fix arrives or listen is over. The NMEA proves itself with probeSentences
// checksummed sentences.
func listenFor(ctx context.Context, port io.Reader, listen time.Duration) (ProbeResult, error) {
	res := ProbeResult{Sats: -1}
	var c Counters
	d := NewDecoder(func(f Fix) {
		res.LastFix = &f
		res.Heard = time.Now()
		res.FixTime, res.Quality, res.Sats = f.Time, f.Quality, f.Sats
	}, &c, nil)
	deadline := time.Now().Add(listen)
	buf := make([]byte, 512)
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		n, err := port.Read(buf)
		if n > 0 {
			d.Write(buf[:n])
		}
		if err != nil { // a read timeout is n == 0 and no error; anything else is the device failing
			return res, fmt.Errorf("read: %w", err)
		}
		if res.LastFix != nil {
			break
		}
	}
	d.Flush()
	s := c.Snapshot()
	res.Sentences, res.Fixes, res.NoFix = s.Sentences+s.UnknownType+s.Unparsable, s.Fixes, s.NoFix
	res.NMEA = res.Sentences >= probeSentences
	return res, nil
}
