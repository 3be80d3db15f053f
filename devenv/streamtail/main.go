// Command streamtail reads a Kinesis stream back, from every shard's oldest record, and prints gps-agent records
// as a table as they arrive. The demo uses it against local Kinesis to show fixes landing; it waits for the
// stream to become ACTIVE first.
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
	if err := tail(ctx, client, *stream, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "streamtail:", err)
		os.Exit(1)
	}
}

type row struct {
	TruckID  string   `json:"truck_id"`
	Seq      uint64   `json:"seq"`
	TS       string   `json:"ts"`
	Lat      float64  `json:"lat"`
	Lon      float64  `json:"lon"`
	SpeedKmh *float64 `json:"speed_kmh"`
	Sats     *int     `json:"sats"`
}

func tail(ctx context.Context, c *kinesis.Client, stream string, dur time.Duration) error {
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
	fmt.Printf("%-10s %6s  %-24s %11s %12s %9s %5s\n", "truck", "seq", "fix time (UTC)", "lat", "lon", "km/h", "sats")
	deadline := time.After(dur)
	total := 0
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var batch []row
		for id, it := range iters {
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it})
			if err != nil {
				return fmt.Errorf("get records %s: %w", id, err)
			}
			iters[id] = out.NextShardIterator
			for _, r := range out.Records {
				var rw row
				if err := json.Unmarshal(r.Data, &rw); err != nil {
					fmt.Printf("  (not a gps-agent record: %q)\n", r.Data)
					continue
				}
				batch = append(batch, rw)
			}
		}
		sort.Slice(batch, func(i, j int) bool { return batch[i].Seq < batch[j].Seq })
		for _, r := range batch {
			fmt.Printf("%-10s %6d  %-24s %11.6f %12.6f %9s %5s\n", r.TruckID, r.Seq, r.TS, r.Lat, r.Lon, opt(r.SpeedKmh, "%.1f"), opt(r.Sats, "%d"))
		}
		total += len(batch)
		select {
		case <-ctx.Done():
			return nil
		case <-deadline:
			fmt.Printf("\n%d fixes arrived in %s\n", total, dur)
			if total == 0 {
				return errors.New("no fixes arrived")
			}
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
