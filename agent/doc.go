// Command gps-agent is the edge half of a fleet-tracking pipeline: it reads NMEA from a GPS receiver on a
// serial port, turns each receiver epoch into one schema-v2 record, keeps it in a durable buffer, and sends it to
// AWS Kinesis Data Streams with the truck ID as partition key.
//
// This package is the program and its wiring: configuration (config.go), the record schema (record.go, the one
// place the schema lives; its JSON Schema is docs/record.schema.json), the daemon's lifecycle (run.go) and the
// command line (main.go and one file per subcommand). The receiver, buffer and uplink live in the packages
// nmea, buffer and uplink, which never import one another: data flows nmea -> agent -> buffer -> uplink ->
// ack in buffer, and only this package knows all of them.
package main
