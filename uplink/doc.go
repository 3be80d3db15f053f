// Package uplink sends opaque byte records to AWS Kinesis Data Streams with
// PutRecords, from a gateway on a cellular link.
//
// It owns batching inside the API limits, per-record partial failures,
// retry classification and backoff, pacing the backlog, the AWS client
// (credentials, endpoint override, proxy, HTTP timeouts) and counters of
// what it sends and receives.
//
// It knows nothing of GPS, of the record schema, or of bbolt: it drains a
// [Queue] and acknowledges a record only after Kinesis returned a sequence
// number for it. Everything not acknowledged stays in the queue, so an
// unreachable stream never loses data; the uplink keeps retrying forever.
//
// Delivery is at least once: a call that stored records but whose reply was
// lost (timeout, dropped connection, a stop that outlasts StopTimeout) is
// sent again.
//
// # Failures
//
// Every failed call is one of three types: a [RetryableError] (no link,
// throttling, 5xx) is retried; a [PermanentError] (no stream, access
// denied) and a [CredentialsError] (no credentials, or credentials refused
// by Kinesis, STS or the IoT credentials provider) wait [Config].MaxBackoff
// between tries and are logged once per change.
//
// How soon a retryable failure is retried depends on what it says:
//   - No link ([RetryableError].Offline: no route, refused, reset, DNS,
//     a connect, TLS or reply timeout, a connection gone dead): the next
//     call is a probe carrying the newest record alone, sent when a new
//     record arrives (one a second at 1 Hz) but at most once a second, and
//     at most every 5 s once the link has been down for five minutes;
//     without new records, after the usual backoff. While a probe's
//     connect has no answer, a fresh one starts every 500 ms, two at most
//     (the kernel would resend the SYN only after 1 s); a probe with no
//     connection after 1 s, or no reply within a few round trips of getting
//     one (1 to 4 s, from the measured link), is given up with its
//     connects, and the next fix's probe takes over. So a SYN reaches a
//     returned link within about half a second, and the link's return is
//     noticed about a second later on a 300 ms link (TCP, TLS, the call),
//     refused or black hole. A probe costs one record's call where
//     something answers, and only SYNs (two a second) where nothing does.
//   - Throttling: again within a second (exponential from 100 ms, capped at
//     1 s, at least half the cap); the backlog's pacer is cut meanwhile.
//   - Anything else (5xx, a malformed reply): exponential backoff with
//     full jitter, capped at [Config].MaxBackoff.
//
// In a dead zone packets vanish without a reset: a connection silent for
// 8 s while a call waits is closed (no idle pings: they cost bytes), and a
// call without a reply drops the connection pool, so the next call dials
// afresh.
//
// # Live first, backlog paced
//
// A record is live when it was queued within the last 10 s (plus
// [Config].Linger) on this boot's monotonic clock ([Record].Queued); a
// record a previous run left on disk never is. Each call carries the live
// records first (the newest, if more than a call holds); they are never
// delayed or paced, so after an outage the dashboard sees where the truck
// is now, and a fix recorded after the link returns never waits behind the
// backlog. The rest of the call is backlog, oldest first, paced by a token
// bucket (records and bytes) to [Config].BackfillShare of one shard's write
// limit of 1,000 records/s and 1 MiB/s, which every truck on that shard
// shares. A truck cannot know how many others share its shard, only hear
// its throttles, so the pace is congestion control, as TCP's: after
// start-up and after each outage (and its backfill delay) it starts at
// 1/16 of the share and doubles each second until the first throttle
// (slow start); then it climbs by 0.5 % of the share a second, after 5 s
// without a throttle by 20 % a second, and each throttled call (at most
// one a second) cuts it to a random 50–70 %, down to 1 record/s. The
// backlog goes in calls of a quarter second's pace, each when the bucket
// holds it, so a fleet's calls spread over the second rather than all
// riding on the live fixes of the same GPS second. Thirty trucks back
// from the same outage on one shard then keep it 85–90 % busy with 5–7 %
// of records throttled (docs/shards.md).
//
// Calls go one at a time, so a live fix waits for the call in flight: the
// backlog part of a call is sized to what the link uploads in 250 ms
// (at least one record, at most 500 and 5 MiB). The uplink measures the
// link as it goes: the floor of a call's duration (round trip and Kinesis'
// own time) on calls carrying a live fix alone (one every 30 s while a
// backlog drains), and the upload rate beyond it on the larger calls, over
// their last 2 s of transfer. On a 256 kbit/s link a backfill call carries
// about 25 fixes (the pacer's 125 would take over a second to upload), on
// LTE the pacer's full quarter second (125 at the default share). Live
// record or not, a backfill call waits until the pacer holds that call's
// worth; live fixes that come meanwhile go alone.
//
// # Fleet jitter
//
// After start-up with a backlog, and when an outage ends (three or more
// calls in a row without a reply or with an error reply), the backfill
// starts after a random delay in [0, [Config].BackfillDelay], so that a
// thousand trucks leaving a depot do not hit their shards at once. Live
// records go at once.
//
// # Stopping
//
// When Run's context ends, no new call starts; the call in flight may
// finish within [Config].StopTimeout (its context ignores the cancellation
// until then) so what Kinesis stored is acknowledged instead of sent again.
// The agent stops intake first, then cancels the uplink, then commits the
// buffer's tail.
//
// # Bytes on the wire
//
// [NewClient] counts every byte its connections write and read (request and
// status lines, headers, bodies, TLS records and handshakes), and
// [Uplink.Stats] reports them ([Stats].BytesMeasured); with any other [API]
// the counters are estimates. What it does to pay less:
//   - PutRecords goes as CBOR (application/x-amz-cbor-1.1): record bytes
//     raw instead of base64 inside JSON, maps and arrays with definite
//     lengths (cborPut).
//   - Request headers Kinesis does not need are removed before signing
//     (User-Agent, X-Amz-User-Agent, Amz-Sdk-Invocation-Id, Amz-Sdk-Request),
//     and gzip is not asked for.
//   - HTTP/2 (offered by AWS endpoints through ALPN): HPACK sends repeated
//     headers as a few bytes. No HTTP/2 pings: a dead connection is noticed
//     by its silence while a call waits on it (replySilence), an idle one
//     costs nothing.
//   - TLS sessions are resumed on reconnect: no certificate chain again.
//
// Measured at the TLS socket through the link emulator (TLS 1.3, h2, a
// stand-in answering with Kinesis' request IDs and 56-digit sequence
// numbers), both ways, the handshake spread over 120 s: at 1 Hz a fix costs
// about 900 B with linger 0 and 435 B with a 10 s linger (845 B and 380 B on
// a connection that stays open); a new connection about 5 KB, a resumed one
// about 4.4 KB with its first call. TCP/IP headers are not counted: about
// 52 B a packet (IPv4 20, TCP 20, timestamps 12), and the client's socket
// counted 4.6 packets a one-fix call both ways (ss segs_out + segs_in: the
// request's HEADERS and DATA records go out separately, the reply, ACKs),
// so about +240 B a fix at linger 0 and, at ~7 packets a 10-fix call, +36 B
// at 10 s.
//
// # Client
//
// [NewClient] honours HTTPS_PROXY / HTTP_PROXY / NO_PROXY (Go never
// proxies localhost), AWS_CA_BUNDLE, and takes credentials from the
// environment, web identity, or static keys in the shared files (see
// NewClient; never EC2 instance metadata) or, with
// [ClientConfig].IoT, from the AWS IoT Core credentials provider using the
// gateway's X.509 thing certificate, cached and refreshed 5 minutes before
// expiry.
//
// Caveats:
//   - One PutRecords call is in flight at a time, so a record is never in two
//     concurrent calls. Records that arrive while a call is in flight form
//     the next batch.
//   - A record larger than the per-record limit (1 MiB including the
//     partition key) can never be accepted by Kinesis. It is skipped, counted
//     in [Stats].Oversize and logged, and left in the queue for the queue's
//     own bounds to evict; it is never acknowledged.
//   - Byte counters belong to the client: give each Uplink its own client
//     from NewClient, or the counts are shared.
//   - A failed live record stays live for the rest of its live window and
//     is retried as such; after that it is backlog, paced.
//   - Logging happens here and only here (Run logs, it does not return
//     transient errors); callers read [Uplink.Stats] for counters.
package uplink
