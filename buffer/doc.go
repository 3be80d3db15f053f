// Package buffer is a durable FIFO of opaque byte records on bbolt, built for a
// gateway on flash that wears out and loses power without warning.
//
// It owns one bbolt file (plus a tiny sidecar file next to it that remembers
// the sequence high-water mark) and knows nothing of GPS or AWS: records are
// bytes, and the caller embeds the sequence number in them.
//
// # Contract
//
//   - Append assigns a sequence number that never repeats for this file path,
//     across restarts, crashes, and a deleted or quarantined database file. It
//     puts the record in an in-memory tail and never waits on disk, except in
//     the rare case where the reserved block of sequence numbers is exhausted
//     because commits have been failing (see Options.SeqBlock).
//   - Run commits the tail to bbolt in fsynced transactions by deadline: each
//     record is due Options.CommitInterval after its Append (monotonic clock),
//     and when the oldest unacked record in the tail falls due Run writes the
//     whole unacked tail at once. A record acked while still in the tail is
//     never written, unless another record fell due meanwhile: an uplink that
//     acks every record within the interval (a 300 ms round trip against the
//     default 1 s) causes no write at all, and offline the records of one
//     interval share one commit. On power loss or kill -9 at most one commit
//     interval of records is lost, plus the time of the fsync in progress;
//     Close loses nothing.
//   - Oldest and Newest read pending records; Ack deletes them in any order.
//     Acks of committed records are applied at the next commit (within one
//     commit interval), so a record acked just before a crash may be read
//     again after restart: delivery is at least once.
//   - Pending data is bounded by Options.MaxBytes and Options.MaxAge; when over,
//     the oldest records are dropped and counted. Append never fails for being full.
//     MaxAge counts the times the caller gives Append (the agent: GNSS time),
//     never the gateway's clock, so a clock step drops nothing.
//   - The file is compacted beside the commits, which go on while it is copied:
//     the loss window stays one commit interval.
//   - Open reads all of a file under 8 MiB before it returns; a larger one
//     it proves in the background while fixes flow (Stats.Checking), and
//     delivers its backlog once proven. Damage found there moves the file
//     aside like Open's, and this run's records go on in a new file.
//   - A corrupt or truncated file, or one written by a newer format, is moved
//     aside as NAME.corrupt-<UTC timestamp> and a new one is started. What a
//     power cut leaves of a file bbolt was still creating (empty, short, or its
//     first four pages partly written) holds nothing: it is started anew, not
//     moved aside, and counted in Stats.Unfinished.
//   - A power cut (every write not yet fsynced lost, and every name whose
//     directory was not synced) loses at most the records of one commit
//     interval and never damages the file: Open syncs each directory it
//     creates and the directory of a new file. Tested on internal/cutfs.
//
// # Concurrency
//
// Append, Oldest, Newest, Ack, Commit, Stats and Run may be called from
// different goroutines at the same time. Close must be called after Run has
// returned. The encode function passed to Append runs under the buffer's lock:
// it must be quick and must not call back into the Buffer.
//
// OpenReadOnly opens a stopped daemon's buffer for inspection without writing.
//
// The on-disk format is described in FORMAT.md.
package buffer
