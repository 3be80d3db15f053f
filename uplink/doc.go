// Package uplink sends opaque byte records to AWS Kinesis Data Streams with
// PutRecords, from a gateway on a cellular link.
//
// It owns batching inside the API limits, per-record partial failures,
// retry classification and backoff, the AWS client (credentials, endpoint
// override, HTTP timeouts) and counters of what it sends and receives.
//
// It knows nothing of GPS, of the record schema, or of bbolt: it drains a
// [Queue] and acknowledges a record only after Kinesis returned a sequence
// number for it. Everything not acknowledged stays in the queue, so an
// unreachable stream never loses data; the uplink keeps retrying forever.
//
// Delivery is at least once: a call that stored records but whose reply was
// lost (timeout, cancellation, dropped connection) is sent again.
//
// Caveats:
//   - One PutRecords call is in flight at a time, so a record is never in two
//     concurrent calls. Records that arrive while a call is in flight form
//     the next batch. One call at a time is ample for one truck: a shard
//     accepts at most 1,000 records/s per partition key anyway.
//   - A record larger than the per-record limit (1 MiB including the
//     partition key) can never be accepted by Kinesis. It is skipped, counted
//     in [Stats].Oversize and logged, and left in the queue for the queue's
//     own bounds to evict; it is never acknowledged.
//   - Logging happens here and only here (Run logs, it does not return
//     transient errors); callers read [Uplink.Stats] for counters.
package uplink
