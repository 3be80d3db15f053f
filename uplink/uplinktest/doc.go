// Package uplinktest runs real local Kinesis stand-ins for tests: kinesis-mock
// (npm kinesis-local, closest to the API) and kinesalite (npm, in-memory
// LevelDB, fast at volume), installed under devenv/node_modules by
// `make deps`.
//
// Each Local is a child process on free 127.0.0.1 ports, killed by process
// group on test cleanup. Neither stand-in throttles or fails on its own;
// faults come from a Proxy the test owns: failed entries, 500s, throttled
// calls, dropped replies, blackouts (connections reset), black holes
// (every byte vanishes both ways, nothing is refused or reset, as in a dead
// zone), a given AWS error on every call (AccessDeniedException,
// ResourceNotFoundException, ...), and a per-stream limit of N records/s like
// a shard's. NewTLSProxy terminates TLS and offers HTTP/2 by ALPN, as AWS
// endpoints do, with its certificate in a file for AWS_CA_BUNDLE. A Relay is a plain TCP relay that
// counts the bytes each way and keeps the first bytes sent: an independent
// witness of what a client puts on the wire.
package uplinktest
