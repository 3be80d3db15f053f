package uplinktest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithy "github.com/aws/smithy-go"
)

func putN(t *testing.T, c *kinesis.Client, stream string, n int) (*kinesis.PutRecordsOutput, error) {
	t.Helper()
	var entries []types.PutRecordsRequestEntry
	for i := range n {
		entries = append(entries, types.PutRecordsRequestEntry{Data: []byte(fmt.Sprint(i)), PartitionKey: aws.String("k")})
	}
	return c.PutRecords(t.Context(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
}

func TestProxyModes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kinesalite")
	}
	l := StartKinesalite(t, "s", 1)

	t.Run("records per second", func(t *testing.T) {
		p := NewProxy(t, l.Endpoint, 1)
		p.Set(Faults{RecordsPerSecond: 500})
		c := (&Local{Endpoint: p.URL}).client()
		start := time.Now()
		var ok, throttled int
		for range 4 {
			out, err := putN(t, c, "s", 300)
			if err != nil {
				t.Fatalf("put records: %v", err)
			}
			for _, e := range out.Records {
				switch aws.ToString(e.ErrorCode) {
				case "":
					ok++
				case "ProvisionedThroughputExceededException":
					throttled++
				default:
					t.Fatalf("error code %q", aws.ToString(e.ErrorCode))
				}
			}
		}
		elapsed := time.Since(start).Seconds()
		// One second's worth of tokens at the start, then 500/s.
		if limit := 500 + int(elapsed*500) + 1; ok > limit || ok < 500 {
			t.Errorf("%d entries let through in %.2f s, want 500..%d", ok, elapsed, limit)
		}
		c2 := p.Counts()
		if c2.RateAdmitted != ok || c2.RateLimited != throttled || ok+throttled != 1200 {
			t.Errorf("counts %+v, client saw %d ok, %d throttled", c2, ok, throttled)
		}
		if got := len(l.ReadAll(t, "s")); got != ok {
			t.Errorf("stream holds %d records, %d were let through", got, ok)
		}
	})

	t.Run("error code", func(t *testing.T) {
		p := NewProxy(t, l.Endpoint, 1)
		p.Set(Faults{ErrorCode: "AccessDeniedException", ErrorMessage: "User: arn:aws:iam::1:user/truck is not authorized"})
		c := (&Local{Endpoint: p.URL}).client()
		_, err := putN(t, c, "s", 1)
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "AccessDeniedException" || !strings.Contains(api.ErrorMessage(), "not authorized") {
			t.Fatalf("put records = %v, want AccessDeniedException with its message", err)
		}
		p.Set(Faults{})
		if _, err := putN(t, c, "s", 1); err != nil {
			t.Fatalf("after the fault is off: %v", err)
		}
		if c := p.Counts(); c.Errors != 1 || c.Forwarded != 1 {
			t.Errorf("counts %+v, want 1 error, 1 forwarded", c)
		}
	})
}
