package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fleetedge/gps-agent/nmea"
)

// atCheckTimeout bounds the answer to the check's AT: a modem answers AT at once, unless another program holds
// the port and reads the answer first.
const atCheckTimeout = 3 * time.Second

// checkGpsd connects to gpsd, as the daemon does, and listens: gpsd serves many clients, so this works whether
// the daemon runs or not. The clock verdict is from the fix gpsd relayed, if any.
func checkGpsd(ctx context.Context, cfg Config, listen time.Duration) (v, clock verdict) {
	v = verdict{Check: "gpsd"}
	addr := cfg.Receiver.Gpsd
	res, info, err := nmea.ProbeGpsd(ctx, addr, listen)
	who := "gpsd"
	if info.Release != "" {
		who = "gpsd " + info.Release
	}
	switch {
	case err != nil && info.Release == "":
		v.Result, v.Detail = fail, err.Error()
		v.Hint = fmt.Sprintf("is gpsd running? `systemctl status gpsd.socket gpsd`; receiver.gpsd is gpsd's HOST:PORT, "+
			"127.0.0.1:2947 unless gpsd was started with -S (configured %q)", addr)
	case err != nil:
		v.Result, v.Detail = fail, fmt.Sprintf("%s at %s answered, then: %v", who, addr, err)
	case len(info.Devices) == 0:
		v.Result, v.Detail = fail, fmt.Sprintf("%s at %s answers but reads no receiver", who, addr)
		v.Hint = "give gpsd the receiver: DEVICES=\"/dev/gps0\" in /etc/default/gpsd (or USBAUTO=\"true\" and hotplug), " +
			"then `systemctl restart gpsd`"
	case !res.NMEA:
		v.Result, v.Detail = fail, fmt.Sprintf("%s at %s reads %s but relayed no NMEA in %s", who, addr,
			strings.Join(info.Devices, ", "), listen)
		v.Hint = "the receiver is silent: its cable, or for a modem's GNSS engine the AT commands ([receiver.at])"
	case res.LastFix == nil:
		v.Result, v.Detail = warn, fmt.Sprintf("%s at %s reads %s: NMEA, %d sentences, no fix yet", who, addr,
			strings.Join(info.Devices, ", "), res.Sentences)
		v.Hint = "the antenna needs open sky; a cold start takes a minute or more"
	default:
		v.Result, v.Detail = pass, fmt.Sprintf("%s at %s reads %s: NMEA, fix quality %d with %d satellites", who, addr,
			strings.Join(info.Devices, ", "), res.Quality, res.Sats)
	}
	if res.LastFix == nil {
		return v, checkClockOffset(0, false)
	}
	roll := weekRollover{notBefore: buildDate()}
	return v, checkClockOffset(res.Heard.Sub(roll.fix(nmea.Fix{Time: res.FixTime}).Time), true)
}

// checkATPort sends AT to the modem's AT port and expects OK: the port is there, is the AT port, and nobody else
// reads its answers. It sends only AT, and says how the running daemon's init commands went last. (Without a
// daemon, runChecks sends the init commands before it listens to the NMEA port, as the daemon would.)
func checkATPort(ctx context.Context, cfg Config, st *fieldStatus) verdict {
	v := verdict{Check: "modem"}
	dev := cfg.Receiver.AT.Device
	res, err := nmea.SendAT(ctx, nmea.ATConfig{Device: dev, Init: []string{"AT"}, Timeout: atCheckTimeout})
	switch {
	case err != nil:
		v.Result, v.Detail = fail, err.Error()
		v.Hint = "check receiver.at.device: `gps-agent ports` names a modem's AT port (Quectel: interface 02)"
		if isPermission(err) {
			v.Hint = "the agent's user needs the dialout group (the unit sets it); run check with sudo"
		}
		return v
	case len(res) == 1 && res[0].OK:
		v.Result, v.Detail = pass, fmt.Sprintf("AT port %s answers OK", dev)
	case len(res) == 1 && res[0].Final != "":
		v.Result, v.Detail = fail, fmt.Sprintf("AT port %s answers AT with %s", dev, res[0].Final)
		v.Hint = "is it the AT port? `gps-agent ports` names a modem's ports"
	default:
		v.Result, v.Detail = fail, fmt.Sprintf("AT port %s: no answer to AT within %s", dev, atCheckTimeout)
		v.Hint = "another program may hold the port: ModemManager usually does (docs/modems.md: tag the port " +
			"ID_MM_PORT_IGNORE); or it is not the AT port (`gps-agent ports`)"
		return v
	}
	if st == nil || st.Agent == nil || st.Agent.Receiver.Link == nil || st.Agent.Receiver.Link.AT == nil {
		return v
	}
	a := st.Agent.Receiver.Link.AT
	if a.Sent.IsZero() {
		v.Detail += "; the daemon has not sent its commands yet"
		return v
	}
	v.Detail += fmt.Sprintf("; the daemon sent %s %s (%s)", atAnswers(a), ago(st.Now, a.Sent), a.Why)
	return v
}
