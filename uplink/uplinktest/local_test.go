package uplinktest

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

func TestLocalRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		start func(testing.TB, string, int) *Local
	}{
		{name: "kinesis-mock", start: StartKinesisMock},
		{name: "kinesalite", start: StartKinesalite},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := tt.start(t, "s", 2)
			c := l.Client(t)
			_, err := c.PutRecord(t.Context(), &kinesis.PutRecordInput{
				StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("hello")})
			if err != nil {
				t.Fatalf("put record: %v", err)
			}
			got := l.ReadAll(t, "s")
			if len(got) != 1 || string(got[0].Data) != "hello" || got[0].PartitionKey != "k" {
				t.Fatalf("read back %+v", got)
			}

			// An outage loses the data; Start brings the stream back empty.
			l.Stop()
			if _, err := c.PutRecord(t.Context(), &kinesis.PutRecordInput{
				StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x")}); err == nil {
				t.Fatalf("put record during outage succeeded")
			}
			l.Start()
			if got := l.ReadAll(t, "s"); len(got) != 0 {
				t.Fatalf("after restart read %d records, want 0", len(got))
			}
		})
	}
}
