package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

// portReport is one line of `gps-agent ports`.
type portReport struct {
	nmea.PortInfo
	Probe      *nmea.ProbeResult `json:"probe,omitempty"`
	ProbeError string            `json:"probe_error,omitempty"`
}

// portsCmd lists serial ports with their USB identity and, with --probe, which of them send NMEA and at what baud.
func portsCmd(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	asJSON := fs.Bool("json", false, "print JSON, for programs")
	probe := fs.Bool("probe", false, "listen to each port and say which send NMEA, at what baud (stop the daemon first: it holds its port)")
	listen := fs.Duration("listen", 2*time.Second, "with --probe: how long to listen at each baud rate")
	rates := fs.String("rates", "", "with --probe: baud rates to try, comma separated (default 4800,9600,19200,38400,57600,115200)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var rateList []int
	for r := range strings.SplitSeq(*rates, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		n, err := strconv.Atoi(r)
		if err != nil || n <= 0 {
			fmt.Fprintf(stderr, "gps-agent ports: --rates: %q is not a baud rate\n", r)
			return errUsage
		}
		rateList = append(rateList, n)
	}
	var reports []portReport
	if fs.NArg() > 0 { // devices named on the command line: pseudo-terminals and symlinks are not listed by the OS
		for _, d := range fs.Args() {
			p := nmea.PortInfo{Name: d}
			nmea.IdentifyPort(&p)
			reports = append(reports, portReport{PortInfo: p})
		}
	} else {
		ports, err := nmea.ListPorts()
		if err != nil {
			return err
		}
		for _, p := range ports {
			reports = append(reports, portReport{PortInfo: p})
		}
	}
	if *probe {
		for i := range reports {
			if reports[i].Role == nmea.RoleDiag { // a modem's Qualcomm diagnostics port talks binary only to its tools
				reports[i].ProbeError = "not probed: a modem's diagnostics port"
				continue
			}
			res, err := nmea.Probe(ctx, reports[i].Name, rateList, *listen)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				reports[i].ProbeError = err.Error()
				continue
			}
			reports[i].Probe = &res
		}
	}
	if *asJSON {
		if reports == nil {
			reports = []portReport{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(reports)
	}
	writePorts(stdout, reports, *probe)
	return nil
}

// writePorts prints the ports as a table, a modem's ports with their role and the config key each goes in.
func writePorts(w io.Writer, reports []portReport, probe bool) {
	if len(reports) == 0 {
		fmt.Fprintln(w, "no serial ports found (hint: is the receiver plugged in? `dmesg | tail` shows it appear)")
		return
	}
	modem := false
	for _, r := range reports {
		modem = modem || r.Modem != ""
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "DEVICE\tUSB ID\tIF\tSERIAL\tPRODUCT"
	if modem {
		head += "\tMODEM PORT"
	}
	if probe {
		head += "\tNMEA"
	}
	fmt.Fprintln(tw, head)
	for _, r := range reports {
		id := "-"
		if r.VID != "" || r.PID != "" {
			id = r.VID + ":" + r.PID
		}
		product := strings.TrimSpace(r.Manufacturer + " " + r.Product)
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", r.Name, id, dash(r.Interface), dash(r.SerialNumber), dash(product))
		if modem {
			line += "\t" + r.roleText()
		}
		if probe {
			line += "\t" + r.probeText()
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nA stable name: put the USB ID in a udev rule (systemd/99-gps-agent.rules) for /dev/gps0.")
	if modem {
		fmt.Fprintln(w, "A modem's ports share one USB ID: match the interface number (IF) too, ATTRS{bInterfaceNumber}; "+
			"ttyUSB numbers move. docs/modems.md has the AT commands.")
	}
}

// roleText says what a modem's port is for, and where it goes in the config.
func (r portReport) roleText() string {
	switch r.Role {
	case "":
		if r.Modem != "" {
			return r.Modem + ": unknown interface"
		}
		return "-"
	case nmea.RoleNMEA:
		return "NMEA of " + r.Modem + ": [receiver] device"
	case nmea.RoleAT:
		return "AT of " + r.Modem + ": [receiver.at] device"
	case nmea.RoleAT2:
		return "second AT of " + r.Modem
	case nmea.RoleDiag:
		return "diagnostics of " + r.Modem + ": leave alone"
	}
	return r.Role + " of " + r.Modem
}

func (r portReport) probeText() string {
	switch {
	case strings.HasPrefix(r.ProbeError, "not probed"):
		return r.ProbeError
	case r.ProbeError != "":
		return "cannot open: " + r.ProbeError
	case r.Probe == nil:
		return "-"
	case !r.Probe.NMEA:
		return "no NMEA heard"
	case r.Probe.LastFix != nil:
		return fmt.Sprintf("yes, %d baud, fix (%d satellites)", r.Probe.Baud, r.Probe.LastFix.Sats)
	default:
		return fmt.Sprintf("yes, %d baud, no fix yet", r.Probe.Baud)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
