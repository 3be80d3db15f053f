// Command streamtail reads a Kinesis stream back, from every shard's oldest record, and prints gps-agent records
// as a table as they arrive, each marked live (it reached Kinesis within --live-within of its fix) or
// backfilled. It stops after --for, or on SIGINT/SIGTERM, and then says per truck which seqs arrived: how many,
// how many are missing between the first and the last, and how many arrived twice. The demo uses it against
// local Kinesis to show fixes landing; it waits for the stream to become ACTIVE first.
//
//	streamtail --endpoint http://127.0.0.1:4567 --stream demo --for 20s
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func main() {
	endpoint := flag.String("endpoint", "", "Kinesis endpoint, e.g. http://127.0.0.1:4567")
	stream := flag.String("stream", "", "stream name")
	region := flag.String("region", "us-east-1", "region")
	dur := flag.Duration("for", 20*time.Second, "how long to watch")
	liveWithin := flag.Duration("live-within", 3*time.Second, "a fix that reached Kinesis within this of its fix time is live")
	complete := flag.Bool("complete", false, "exit 1 unless every seq from the first to the last arrived")
	flag.Parse()
	if *endpoint == "" || *stream == "" {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	client := kinesis.New(kinesis.Options{
		Region:       *region,
		BaseEndpoint: endpoint,
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
	seen := seqs{}
	err := tail(ctx, client, *stream, *dur, *liveWithin, seen)
	if err == nil {
		err = seen.report(*complete)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "streamtail:", err)
		os.Exit(1)
	}
}

// seqs counts, per truck, how often each seq arrived.
type seqs map[string]map[uint64]int

func (s seqs) add(truck string, seq uint64) {
	if s[truck] == nil {
		s[truck] = map[uint64]int{}
	}
	s[truck][seq]++
}

// report prints each truck's seqs: arrived, missing between the first and the last, duplicates.
func (s seqs) report(complete bool) error {
	var incomplete []string
	for truck, m := range s {
		first, last := uint64(1<<63), uint64(0)
		dups := 0
		for q, n := range m {
			first, last = min(first, q), max(last, q)
			dups += n - 1
		}
		missing := int(last-first+1) - len(m)
		fmt.Printf("%s: seq %d to %d: %d arrived, %d missing, %d duplicates\n", truck, first, last, len(m), missing, dups)
		if missing > 0 {
			incomplete = append(incomplete, truck)
		}
	}
	if len(s) == 0 {
		return errors.New("no fixes arrived")
	}
	if complete && len(incomplete) > 0 {
		return fmt.Errorf("seqs missing for %v", incomplete)
	}
	return nil
}

// row is what the table shows of a record. Schema v1 and v2 name these fields alike (docs/downstream.md); they
// differ in rx, which the table does not show.
type row struct {
	V        int      `json:"v"`
	TruckID  string   `json:"truck_id"`
	Seq      uint64   `json:"seq"`
	TS       string   `json:"ts"`
	Lat      float64  `json:"lat"`
	Lon      float64  `json:"lon"`
	SpeedKmh *float64 `json:"speed_kmh"`
	Sats     *int     `json:"sats"`

	arrived time.Time // when Kinesis took it
}

// parseRow reads a gps-agent record of schema v1 or v2.
func parseRow(data []byte) (row, error) {
	var r row
	if err := json.Unmarshal(data, &r); err != nil {
		return row{}, fmt.Errorf("not a gps-agent record: %w", err)
	}
	if r.V != 1 && r.V != 2 {
		return row{}, fmt.Errorf("not a gps-agent record of schema v1 or v2 (v %d)", r.V)
	}
	if r.TruckID == "" || r.Seq == 0 {
		return row{}, errors.New("not a gps-agent record: no truck_id or seq")
	}
	return r, nil
}

// how says whether r reached Kinesis within liveWithin of its fix: live, or backfilled (and how late).
func (r row) how(liveWithin time.Duration) string {
	ts, err := time.Parse(time.RFC3339Nano, r.TS)
	if err != nil {
		return "?"
	}
	if late := r.arrived.Sub(ts); late > liveWithin {
		return fmt.Sprintf("backfilled, %s late", late.Round(time.Second))
	}
	return "live"
}

func tail(ctx context.Context, c *kinesis.Client, stream string, dur, liveWithin time.Duration, seen seqs) error {
	shards, err := waitActive(ctx, c, stream)
	if err != nil {
		return err
	}
	iters := map[string]*string{}
	for _, s := range shards {
		out, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: &stream, ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return fmt.Errorf("get shard iterator %s: %w", aws.ToString(s.ShardId), err)
		}
		iters[aws.ToString(s.ShardId)] = out.ShardIterator
	}
	fmt.Printf("watching stream %q (%d shards) for %s\n\n", stream, len(shards), dur)
	fmt.Printf("%-12s %6s  %-24s %11s %12s %7s %4s  %s\n", "truck", "seq", "fix time (UTC)", "lat", "lon", "km/h", "sats", "arrived")
	deadline := time.After(dur)
	total := 0
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var batch []row
		for id, it := range iters {
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
			if err != nil && ctx.Err() != nil { // stopped: what arrived is reported
				fmt.Printf("\n%d fixes arrived\n", total)
				return nil
			}
			if err != nil {
				return fmt.Errorf("get records %s: %w", id, err)
			}
			iters[id] = out.NextShardIterator
			for _, r := range out.Records {
				rw, err := parseRow(r.Data)
				if err != nil {
					fmt.Printf("  (%v: %q)\n", err, r.Data)
					continue
				}
				rw.arrived = time.Now()
				if r.ApproximateArrivalTimestamp != nil {
					rw.arrived = *r.ApproximateArrivalTimestamp
				}
				batch = append(batch, rw)
			}
		}
		// In the order Kinesis took them: the demo shows the live fix arriving before the backlog.
		sort.SliceStable(batch, func(i, j int) bool { return batch[i].arrived.Before(batch[j].arrived) })
		for _, r := range batch {
			fmt.Printf("%-12s %6d  %-24s %11.6f %12.6f %7s %4s  %s\n", r.TruckID, r.Seq, r.TS, r.Lat, r.Lon,
				opt(r.SpeedKmh, "%.1f"), opt(r.Sats, "%d"), r.how(liveWithin))
			seen.add(r.TruckID, r.Seq)
		}
		total += len(batch)
		select {
		case <-ctx.Done():
			fmt.Printf("\n%d fixes arrived\n", total)
			return nil
		case <-deadline:
			fmt.Printf("\n%d fixes arrived in %s\n", total, dur)
			return nil
		case <-tick.C:
		}
	}
}

func opt[T any](v *T, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func waitActive(ctx context.Context, c *kinesis.Client, stream string) ([]types.Shard, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		out, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &stream})
		if err == nil && len(out.Shards) > 0 {
			return out.Shards, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stream %q not ready: %v", stream, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
