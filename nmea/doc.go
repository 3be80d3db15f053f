// Package nmea is the receiver side of gps-agent: it owns the serial port,
// frames the raw bytes into NMEA 0183 sentences, verifies checksums, parses
// them with github.com/adrianmo/go-nmea and assembles exactly one [Fix] per
// receiver epoch (the burst of sentences that share one time of day).
//
// It also contains a [Simulator] that writes realistic NMEA of a moving truck,
// and [OpenPTY], a pseudo-terminal to feed it to anything that expects a
// serial device (the agent, gpsd, cat).
//
// The package knows nothing of storage, records or AWS: its only output is
// the Fix value handed to a callback, plus [Counters] that explain what was
// dropped and why.
//
// Caveats:
//   - A Decoder is not safe for concurrent use; Counters are.
//   - Unknown values are NaN (floats) or -1 (ints), never 0: a speed of 0
//     means the truck stands still.
//   - Fix.Time is the receiver's GNSS time, not the gateway clock. An epoch
//     whose date is unknown (no RMC or ZDA seen yet) is dropped and counted.
//   - The decoder never returns an error for bad input; it counts it.
package nmea
