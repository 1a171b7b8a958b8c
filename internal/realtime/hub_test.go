package realtime

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/broker"
	natsbroker "github.com/strata-dev/strata/internal/broker/nats"
	"github.com/strata-dev/strata/internal/outbox"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/schema"
)

// countingBroker is a real broker that counts its open subscriptions.
type countingBroker struct {
	broker.Broker
	open atomic.Int32
}

func (b *countingBroker) Subscribe(ctx context.Context, s broker.Subscription, h broker.Handler) (broker.Subscriber, error) {
	sub, err := b.Broker.Subscribe(ctx, s, h)
	if err != nil {
		return nil, err
	}
	b.open.Add(1)
	return &countedSub{Subscriber: sub, b: b}, nil
}

type countedSub struct {
	broker.Subscriber
	b    *countingBroker
	done atomic.Bool
}

func (s *countedSub) Close() error {
	if s.done.CompareAndSwap(false, true) {
		s.b.open.Add(-1)
	}
	return s.Subscriber.Close()
}

// TestHubFollowsOnlyWithClients: a hub without clients holds no
// subscription; the first client starts one, and some time after the last
// leaves it ends. A client resuming across that idle time still gets
// every event it missed, then the live ones, in order.
func TestHubFollowsOnlyWithClients(t *testing.T) {
	ctx := context.Background()
	recs, posts := postsService(t)
	nb, err := natsbroker.New(ctx, natsbroker.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nb.Close() })
	b := &countingBroker{Broker: nb}
	h := New(ctx, Config{Broker: b, Records: recs, Idle: 50 * time.Millisecond})
	t.Cleanup(func() { h.Close() })

	publish := func(title string) uint64 {
		t.Helper()
		rec := &schema.Record{Collection: posts, ID: "r" + title, Values: schema.Values{"title": title}}
		data, err := rec.AppendInternalJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		ev, _ := json.Marshal(outbox.Event{ID: "ev-" + title, Op: outbox.OpCreate, Collection: "posts", RecordID: rec.ID, Record: data})
		seq, err := b.Publish(ctx, broker.Message{ID: "ev-" + title, Topic: outbox.Topic("posts"), Data: ev})
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	watch, err := recs.Watch(ctx, records.System, "posts", "", "")
	if err != nil {
		t.Fatal(err)
	}
	receive := func(c *client, want ...string) {
		t.Helper()
		var got []string
		for len(got) < len(want) {
			select {
			case ch := <-c.queue:
				var r map[string]any
				json.Unmarshal(ch.Record, &r)
				got = append(got, r["title"].(string))
			case <-time.After(10 * time.Second):
				t.Fatalf("received %v, want %v", got, want)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("received %v, want %v", got, want)
		}
	}
	waitOpen := func(want int32) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); b.open.Load() != want; {
			if time.Now().After(deadline) {
				t.Fatalf("%d subscriptions open, want %d", b.open.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	publish("before") // published while no one listens: nobody follows it
	if n := b.open.Load(); n != 0 {
		t.Fatalf("a hub without clients holds %d subscriptions", n)
	}
	c1 := newClient(h)
	if _, err := h.register(ctx, c1); err != nil {
		t.Fatal(err)
	}
	h.watch(ctx, c1, []*records.Watch{watch}, 0)
	waitOpen(1)
	seen := publish("one")
	receive(c1, "one")
	h.unregister(c1)
	waitOpen(0)

	publish("two") // missed by everyone
	publish("three")
	c2 := newClient(h)
	if _, err := h.register(ctx, c2); err != nil {
		t.Fatal(err)
	}
	h.watch(ctx, c2, []*records.Watch{watch}, seen)
	publish("four")
	receive(c2, "two", "three", "four")
	waitOpen(1)

	h.Close()
	waitOpen(0)
	c3 := newClient(h)
	if _, err := h.register(ctx, c3); err == nil {
		t.Error("a closed hub registered a client")
	}
}
