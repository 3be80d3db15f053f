// Package uplinktest runs real local Kinesis stand-ins for tests: kinesis-mock
// (npm kinesis-local, closest to the API) and kinesalite (npm, in-memory
// LevelDB, fast at volume), installed under devenv/node_modules by
// `make deps`.
//
// Each Local is a child process on free 127.0.0.1 ports, killed by process
// group on test cleanup. Neither stand-in throttles or fails on its own;
// faults come from a proxy the test owns.
package uplinktest
