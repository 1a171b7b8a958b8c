package natsbroker_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/broker"
	natsbroker "github.com/strata-dev/strata/internal/broker/nats"
)

func openBench(b *testing.B) *natsbroker.Broker {
	b.Helper()
	br, err := natsbroker.New(context.Background(), natsbroker.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	return br
}

var payload = []byte(`{"collection":"posts","id":"r_01JQ3Z","op":"update","data":{"title":"hello","views":42}}`)

// BenchmarkPublish is one publish, waiting for the stream's ack, on the
// embedded server: the outbox relay's unit of work.
func BenchmarkPublish(b *testing.B) {
	br := openBench(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if _, err := br.Publish(ctx, broker.Message{ID: strconv.Itoa(i), Topic: "records.posts", Key: "posts/1", Data: payload}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishParallel is acknowledged publishes from many goroutines
// at once on the embedded server.
func BenchmarkPublishParallel(b *testing.B) {
	br := openBench(b)
	ctx := context.Background()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := strconv.FormatInt(n.Add(1), 10)
			if _, err := br.Publish(ctx, broker.Message{ID: id, Topic: "records.posts", Data: payload}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPublishDeliver is the time from publishing b.N messages (from
// parallel publishers) until a group member has handled and acknowledged
// all of them, on the embedded server.
func BenchmarkPublishDeliver(b *testing.B) {
	br := openBench(b)
	ctx := context.Background()
	var handled atomic.Int64
	done := make(chan struct{})
	var target atomic.Int64
	target.Store(-1)
	s, err := br.Subscribe(ctx, broker.Subscription{Group: "bench", Topics: []string{"records.>"}}, func(context.Context, broker.Delivery) error {
		if handled.Add(1) == target.Load() {
			close(done)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	target.Store(int64(b.N))
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := strconv.FormatInt(n.Add(1), 10)
			if _, err := br.Publish(ctx, broker.Message{ID: id, Topic: "records.posts", Data: payload}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("handled %d of %d", handled.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
