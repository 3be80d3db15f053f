package main

import (
	"net"
	"strconv"
	"strings"
)

// maxATCommand bounds one configured AT command: 3GPP TS 27.007 lets a modem refuse command lines longer than
// its buffer, which is at least 256 characters on the modems we know.
const maxATCommand = 256

// validate checks the receiver's source and the modem's commands; bad is Validate's.
func (r *ReceiverConfig) validate(bad func(key, format string, args ...any)) {
	switch {
	case r.Device != "" && r.Gpsd != "":
		bad("receiver.gpsd", "set either receiver.device (a serial port) or receiver.gpsd (gpsd's HOST:PORT), not both: "+
			"device %q, gpsd %q", r.Device, r.Gpsd)
	case r.Device == "" && r.Gpsd == "":
		bad("receiver.device", "required: the receiver's serial device, for example /dev/ttyUSB0, "+
			"or instead receiver.gpsd = \"127.0.0.1:2947\" when gpsd owns the receiver")
	case r.Gpsd != "":
		if msg := checkHostPort(r.Gpsd); msg != "" {
			bad("receiver.gpsd", "%q: %s", r.Gpsd, msg)
		}
	}
	at := &r.AT
	switch {
	case len(at.Init) > 0 && at.Device == "":
		bad("receiver.at.device", "required with receiver.at.init: the modem's AT port, for example /dev/ttyUSB2")
	case at.Device != "" && len(at.Init) == 0:
		bad("receiver.at.init", "required with receiver.at.device: the commands that start the GNSS engine, "+
			"for example [\"AT+QGPS=1\"]")
	case at.Device != "" && at.Device == r.Device:
		bad("receiver.at.device", "%q is receiver.device: the AT port and the NMEA port are two ports of the modem "+
			"(`gps-agent ports` tells which is which)", at.Device)
	}
	for i, cmd := range at.Init {
		if msg := checkATCommand(cmd); msg != "" {
			bad("receiver.at.init", "command %d %q: %s", i+1, cmd, msg)
		}
	}
}

// checkHostPort says what is wrong with a HOST:PORT, "" when nothing.
func checkHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return "use HOST:PORT, for example 127.0.0.1:2947 (gpsd's port)"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "the port must be a number from 1 to 65535"
	}
	return ""
}

// checkATCommand says what is wrong with one AT command, "" when nothing.
func checkATCommand(cmd string) string {
	switch {
	case len(cmd) < 2 || !strings.EqualFold(cmd[:2], "AT"):
		return "an AT command starts with AT"
	case len(cmd) > maxATCommand:
		return "longer than 256 characters"
	case strings.ContainsFunc(cmd, func(r rune) bool { return r < 0x20 || r > 0x7e }):
		return "only printable ASCII (the agent ends each command with a carriage return)"
	}
	return ""
}
