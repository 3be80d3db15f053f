// Package uplinktest runs real local Kinesis stand-ins for tests and puts
// an emulated cellular link in front of them.
//
// Stand-ins: kinesis-mock (npm kinesis-local, closest to the API) and
// kinesalite (npm, in-memory LevelDB, fast at volume), installed under
// devenv/node_modules by `make deps`. Each Local is a child process on free
// 127.0.0.1 ports, killed by process group on test cleanup.
//
// The link: NewLink puts a Wire and a Proxy between a client and a Local.
// The Wire is a link emulator at the TCP level: a one-way delay each way
// and a bottleneck rate each way shared by all connections, paced as a
// delay line (each segment leaves when the one before it is serialised and
// arrives a one-way delay later; a full bottleneck buffer pushes back
// through TCP); outages switchable at run time, Refused (connects refused,
// open connections reset) and BlackHole (nothing answers, nothing is reset;
// with a NetNS a DROP rule makes connects hang too); and meters of the
// bytes at the client's socket, per connection and in total, at any time.
// Profiles: Loopback, LTE, Poor. The TCP handshake itself pays no round
// trip (the kernel completes it before the Wire sees it); everything after
// it does. cmd/linkemu runs a Wire and a Proxy as a process.
//
// The Proxy injects HTTP-level faults: failed entries, 500s, throttled
// calls, dropped replies, blackouts (connections reset), its own black holes
// (every byte vanishes both ways), a given AWS error on every call
// (AccessDeniedException, ResourceNotFoundException, ...), and a per-stream
// limit of N records/s like a shard's. With a CAFile it terminates TLS and
// offers HTTP/2 by ALPN, as AWS endpoints do, with a certificate chain shaped
// like AWS's (RSA 2048, leaf and intermediate sent) whose CA is written for
// AWS_CA_BUNDLE. Its replies carry what AWS's do (request-ID headers; no
// HTTP/1.1 connection headers, no null members), so bytes measured through
// it are what a truck pays.
//
// A Relay is a plain TCP relay that counts the bytes each way and keeps the
// first bytes sent: an independent witness of what a client puts on the
// wire.
package uplinktest
