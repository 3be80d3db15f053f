package nmea

import "errors"

// Sentinel errors of the package. None reaches a caller: bad receiver input
// is counted, never returned (see [Counters]), and device errors are wrapped
// with the device's name as they happen.

// errNoSentences ends an auto-baud probe at a rate that delivered no
// checksummed sentence within probeWindow: Run tries the next rate.
var errNoSentences = errors.New("no checksummed sentences at this baud rate")

// errNoPTY is returned where pseudo-terminals are not implemented (all but
// Linux, where the agent runs): OpenPTY and the simulator's line-speed probe.
var errNoPTY = errors.New("not supported on this system")
