package main

// `gps-agent check`'s health line: one real health row (health_record.go), marked as a check, put to [kinesis]
// health_stream through the same client as the daemon's, and the verdict of Kinesis on it.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/fleetedge/gps-agent/nmea"
)

// checkHealthRow puts a check row to the health stream. With a running daemon the row carries the daemon's
// counters and its receiver's state, as the daemon's next row would; without one, check's own receiver finding
// (rx) and zero counters.
func checkHealthRow(ctx context.Context, client *kinesis.Client, cfg Config, running *fieldStatus, rx verdict) verdict {
	v := verdict{Check: "health"}
	in := healthInputs{now: time.Now(), receiver: rxStateOfVerdict(rx)}
	if running != nil && running.Agent != nil {
		in = daemonHealthInputs(*running)
	}
	row := buildHealthRow(cfg.TruckID, newBootID(), 1, healthCheck, in)
	stream := cfg.Kinesis.HealthStream
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream),
		Records: []types.PutRecordsRequestEntry{{Data: row.encode(), PartitionKey: aws.String(cfg.TruckID)}}})
	var api smithy.APIError
	switch {
	case err != nil:
		v.Result, v.Detail = fail, fmt.Sprintf("put a check row to %s: %v", stream, err)
		switch {
		case errors.As(err, &api) && api.ErrorCode() == "ResourceNotFoundException":
			v.Detail = fmt.Sprintf("health stream %s not found", stream)
			v.Hint = "create it, or fix kinesis.health_stream (empty turns health rows off)"
		case errors.As(err, &api) && strings.Contains(api.ErrorCode(), "AccessDenied"):
			v.Hint = "the credentials' policy needs kinesis:PutRecords on the health stream too (docs/iam-agent-policy.json)"
		default:
			v.Hint = "see the stream line: the health rows take the same way"
		}
	case len(out.Records) != 1:
		v.Result, v.Detail = fail, fmt.Sprintf("put a check row to %s: %d results for 1 record", stream, len(out.Records))
	case aws.ToString(out.Records[0].ErrorCode) != "":
		v.Result, v.Detail = fail, fmt.Sprintf("%s refused the check row: %s: %s", stream,
			aws.ToString(out.Records[0].ErrorCode), aws.ToString(out.Records[0].ErrorMessage))
		v.Hint = "throttled? the health stream's shards are shared by the fleet: try again"
	default:
		v.Result, v.Detail = pass, fmt.Sprintf("a check row (receiver %s, boot %s) stored in %s, %s", row.Receiver,
			row.Boot, stream, aws.ToString(out.Records[0].ShardId))
	}
	return v
}

// rxStateOfVerdict is the receiver's state from check's own receiver line, when no daemon runs.
func rxStateOfVerdict(rx verdict) string {
	switch rx.Result {
	case pass:
		return rxOK
	case warn:
		return rxNoFix
	}
	if strings.Contains(rx.Detail, "opens, but no NMEA") {
		return rxSilent
	}
	return rxUnavailable
}

// daemonHealthInputs is what the running daemon's status says, as its own rows would.
func daemonHealthInputs(st fieldStatus) healthInputs {
	a := st.Agent
	rx := a.Receiver
	offset := time.Duration(a.Clock.OffsetMs) * time.Millisecond
	in := healthInputs{now: time.Now(), sentences: rx.Counters.Sentences, fixes: rx.Counters.Fixes,
		pending: a.Buffer.Pending, oldestPending: a.Buffer.OldestAppended,
		dropped: a.Buffer.DroppedMaxBytes + a.Buffer.DroppedMaxAge, lost: a.Lost,
		bytesSent: a.Uplink.BytesSent, bytesReceived: a.Uplink.BytesReceived, uptime: st.Now.Sub(a.Started)}
	for _, n := range a.Filter {
		in.filtered += n
	}
	var sinceFix time.Duration = -1
	if f := rx.LastFix; f != nil {
		// Received at its GNSS time plus the clock offset, on the gateway's clock (no monotonic reading here).
		in.fix = &fixSeen{gnss: f.Time, at: f.Time.Add(offset)}
		sinceFix = st.Now.Sub(in.fix.at)
	}
	sinceSentence := time.Duration(-1)
	if !rx.Counters.LastSentence.IsZero() {
		sinceSentence = st.Now.Sub(rx.Counters.LastSentence)
	}
	link, sinceOpen := nmea.LinkOpen, st.Now.Sub(a.Started)
	if l := rx.Link; l != nil {
		link = l.State
		if !l.Since.IsZero() {
			sinceOpen = st.Now.Sub(l.Since)
		}
		if link == nmea.LinkUnavailable {
			in.receiverError = l.LastError
		}
	}
	in.receiver = receiverState(link, sinceOpen, sinceSentence, sinceFix)
	if in.receiver == "" {
		in.receiver = rxNoFix // just opened: no fix yet
	}
	return in
}
