// Package nmea is the receiver side of gps-agent: it owns the serial port,
// frames the raw bytes into NMEA 0183 sentences, verifies checksums, parses
// them and assembles exactly one [Fix] per receiver epoch (the burst of
// sentences that share one time of day). Parsing is github.com/adrianmo/go-nmea's:
// the types a fix uses are read by an in-package reader (fastread.go) held to
// go-nmea by a differential test and a fuzz target, for speed; go-nmea reads
// every other shape and reports every error.
//
// What it reads:
//   - Position: RMC, GGA, GNS, GLL (GGA preferred, then GNS, RMC, GLL);
//     speed and course from RMC or VTG; altitude, quality, satellites and
//     HDOP from GGA or GNS, else GSA; the date from ZDA or RMC (2-digit
//     years: 80..99 are 19xx, 00..79 are 20xx). GSV only marks the cycle.
//   - Any talker (GP, GN, GL, GA, GB, BD, GQ, GI, ...), mixed in one epoch.
//   - "No fix" is explicit: RMC/GLL status V, FAA mode N, M or S, GGA quality
//     0, 7 (manual) or 8 (simulator), GNS mode all N, GGA with 0 satellites
//     (a stale position, except dead reckoning).
//   - When the sentences of an epoch disagree, the most trusted one that
//     states the fix status decides, whatever their order: GGA, then GNS,
//     RMC, GLL (the order positions are preferred in). GSA never decides; an
//     empty status or quality field states nothing. So RMC A with GGA
//     quality 0 is no fix, and RMC V with GGA quality 1 a fix of quality 1.
//     (gpsd 3.22 takes the word of the epoch's last sentence; on the usual
//     order, RMC before GGA, both agree. No epoch of the 20 gpsd logs in
//     testdata has its sentences disagree.)
//   - Receivers without RMC: the date comes from ZDA, else the last known
//     date is carried (and advanced at midnight); [Fix.DateSource] says which.
//     A fix before any date is held and dated by the next epoch that has one.
//
// Epochs close as early as possible. An epoch runs from a sentence with a
// new time of day to the next one; untimed sentences (VTG, GSA, GSV) belong
// to the epoch of the last timed one. The decoder learns the receiver's last
// sentence of a cycle (the "ender", e.g. the second GSA or the last part of
// GSV): the sentence before a new time of day, when two cycles in a row end
// on it, at any rate (at 1 Hz too, where the idle flush has closed each
// epoch long before the next begins). It then hands the fix on the moment
// that sentence is complete. Until it is learned, an epoch closes when the
// next time of day arrives or after 300 ms of silence; once it is learned,
// the [Receiver] waits up to 1 s of silence for it. An epoch closed early
// by the idle flush keeps what still comes of it: those sentences teach the
// ender, are not counted late, and never leak into the next epoch.
//
// Framing is bounded and never stops: binary frames (UBX, SiRF), NUL bytes,
// half lines and endless lines are dropped and counted by reason in
// [Counters]; a sentence is at most [MaxSentence] bytes and memory does not
// grow with the input.
//
// The [Receiver] reopens a vanished device with backoff, finds the baud rate
// when asked (auto-baud), reports silence, and logs a summary of dropped
// input at most once a minute. It reads a serial port, or gpsd over TCP
// (gpsd.go: the receiver's NMEA relayed, gpsd's JSON replies kept out of the
// decoder), and starts a cellular modem's GNSS engine with AT commands on the
// modem's AT port (at.go). [ListPorts] names a known modem's ports (NMEA, AT)
// by USB ID and interface number from sysfs (modem_ports.go), and [SimModem]
// plays such a modem on two pseudo-terminals. [Replay] plays a recorded log at its pace,
// and the [Simulator] writes realistic NMEA of a truck (at a chosen line
// rate, to a pty from [OpenPTY]).
//
// The package knows nothing of storage, records or AWS: its only output is
// the Fix value handed to a callback, plus [Counters] that explain what was
// dropped and why.
//
// Caveats:
//   - A Decoder is not safe for concurrent use; Counters are.
//   - Unknown values are NaN (floats) or -1 (ints), never 0: a speed of 0
//     means the truck stands still.
//   - Fix.Time is the receiver's GNSS time, not the gateway clock.
//   - The decoder never returns an error for bad input; it counts it.
//   - A receiver that changes its cycle costs little: if the learned ender
//     does not come (lost to a bad checksum, say), the epoch closes with the
//     next time of day (one epoch of latency) and the ender stays; two
//     cycles that end on another sentence make that one the ender. A timed
//     sentence after the ender means the epoch was closed early: it is
//     dropped (counted in Late) and the ender relearned.
package nmea
