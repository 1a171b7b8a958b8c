package realtime

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-dev/strata/internal/outbox"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/storetest"
)

// postsService returns a records service on SQLite with a collection
// "posts" of one text field, title.
func postsService(t *testing.T) (*records.Service, *schema.Collection) {
	t.Helper()
	ctx := context.Background()
	recs, err := records.New(ctx, records.Options{DB: storetest.Open(t, "sqlite"), Secret: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := recs.CreateCollection(ctx, &schema.Collection{Name: "posts", Fields: []*schema.Field{{Name: "title", Type: schema.Text}}})
	if err != nil {
		t.Fatal(err)
	}
	return recs, c
}

// testHub is a hub without a broker, for the client's queueing.
func testHub(t *testing.T, buffer int) (*Hub, []*records.Watch, func(title string) *decoded) {
	t.Helper()
	ctx := context.Background()
	recs, c := postsService(t)
	w, err := recs.Watch(ctx, records.System, "posts", "", `title != "skip"`)
	if err != nil {
		t.Fatal(err)
	}
	h := &Hub{cfg: Config{Buffer: buffer}, recs: recs, clients: map[*client]struct{}{},
		sent:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sent"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dropped"}, []string{"reason"})}
	seq := uint64(0)
	event := func(title string) *decoded {
		seq++
		rec := &schema.Record{Collection: c, ID: "r" + title, Values: schema.Values{"title": title}}
		return &decoded{seq: seq, ev: outbox.Event{Op: outbox.OpCreate, Collection: "posts"}, rec: rec}
	}
	return h, []*records.Watch{w}, event
}

func titles(t *testing.T, c *client) []string {
	t.Helper()
	var out []string
	for {
		select {
		case ch := <-c.queue:
			var r map[string]any
			json.Unmarshal(ch.Record, &r)
			out = append(out, r["title"].(string))
		default:
			return out
		}
	}
}

// TestSlowConsumer: a client that falls more than its buffer behind is
// disconnected with a reason, instead of growing memory.
func TestSlowConsumer(t *testing.T) {
	ctx := context.Background()
	h, ws, event := testHub(t, 2)
	c := newClient(h)
	c.watches = ws
	c.offer(ctx, event("a"))
	c.offer(ctx, event("skip")) // filtered out: takes no room
	c.offer(ctx, event("b"))
	select {
	case <-c.closed:
		t.Fatal("closed with a full but not overflowing queue")
	default:
	}
	c.offer(ctx, event("c"))
	select {
	case <-c.closed:
	default:
		t.Fatal("a client past its buffer is still connected")
	}
	if !strings.HasPrefix(c.reason(), "slow_consumer") {
		t.Errorf("reason %q", c.reason())
	}
	if got := titles(t, c); strings.Join(got, ",") != "a,b" {
		t.Errorf("queued %v", got)
	}
}

// TestReplayHoldsLiveEvents: live events that arrive while missed ones
// are replayed wait, and follow the replay in order; too many of them
// disconnect the client too.
func TestReplayHoldsLiveEvents(t *testing.T) {
	ctx := context.Background()
	h, ws, event := testHub(t, 3)
	c := newClient(h)
	c.watches, c.replaying = ws, true
	c.offer(ctx, event("live1"))
	if err := c.deliver(ctx, event("missed1")); err != nil {
		t.Fatal(err)
	}
	c.offer(ctx, event("live2"))
	if err := c.deliver(ctx, event("missed2")); err != nil {
		t.Fatal(err)
	}
	if got := titles(t, c); strings.Join(got, ",") != "missed1,missed2" {
		t.Fatalf("during the replay: %v", got)
	}
	c.endReplay()
	if got := titles(t, c); strings.Join(got, ",") != "live1,live2" {
		t.Errorf("after the replay: %v", got)
	}

	c2 := newClient(h)
	c2.watches, c2.replaying = ws, true
	for _, title := range []string{"1", "2", "3", "4"} {
		c2.offer(ctx, event(title))
	}
	select {
	case <-c2.closed:
	default:
		t.Error("held events past the buffer did not disconnect the client")
	}
}

func TestRecent(t *testing.T) {
	r := newRecent(2)
	if !r.add("a") || !r.add("b") || r.add("a") {
		t.Fatal("a repeat within the window was not caught")
	}
	r.add("c") // pushes a out
	if !r.add("a") {
		t.Error("an id older than the window is still remembered")
	}
}

func TestParseSubscriptions(t *testing.T) {
	got, err := ParseSubscriptions([]string{"posts", "posts/abc, users"})
	if err != nil || len(got) != 3 || got[1] != (Target{"posts", "abc"}) || got[2] != (Target{"users", ""}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range [][]string{nil, {""}, {"/x"}, {"a/"}, {"a/b/c"}, {"a b"}, {strings.Repeat("a,", 101)}} {
		if _, err := ParseSubscriptions(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParsePosition("12x"); err == nil {
		t.Error("a bad Last-Event-ID accepted")
	}
	if n, err := ParsePosition(" 42 "); n != 42 || err != nil {
		t.Errorf("ParsePosition: %d, %v", n, err)
	}
}

func FuzzParseSubscriptions(f *testing.F) {
	f.Add("posts,posts/abc")
	f.Add("a//b")
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ParseSubscriptions([]string{s})
		if err != nil {
			return
		}
		for _, x := range ts {
			if x.Collection == "" || strings.ContainsAny(x.Collection, "/ \t") || strings.Contains(x.RecordID, "/") {
				t.Fatalf("%q gave %+v", s, x)
			}
		}
	})
}
