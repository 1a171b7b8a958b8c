// Package brokertest is the behavioural suite every broker.Broker adapter
// passes: each adapter's tests call Run with a function that opens a fresh
// broker on its engine.
package brokertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strata-dev/strata/internal/broker"
)

// Timings of the suite: how long to wait for a delivery that must come,
// and how long to watch for one that must not.
const (
	waitFor  = 10 * time.Second
	quietFor = 200 * time.Millisecond
)

// Open returns a broker with an empty stream that no other call of Open
// shares, and closes it when t ends. The suite may close it earlier;
// Close must be safe to call twice.
type Open func(t *testing.T) broker.Broker

// Run runs the suite against the brokers open returns.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, Open)
	}{
		{"PublishReceive", testPublishReceive},
		{"TopicPatterns", testTopicPatterns},
		{"KeyOrder", testKeyOrder},
		{"GroupSharesWork", testGroupSharesWork},
		{"FanOut", testFanOut},
		{"RetryAfterError", testRetryAfterError},
		{"Deduplicate", testDeduplicate},
		{"PublishAll", testPublishAll},
		{"Replay", testReplay},
		{"Last", testLast},
		{"GroupResumes", testGroupResumes},
		{"Close", testClose},
		{"CloseWaitsForHandler", testCloseWaitsForHandler},
		{"Context", testContext},
		{"Invalid", testInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// inbox collects deliveries from one or more subscribers.
type inbox struct {
	ch chan tagged
}

type tagged struct {
	broker.Delivery
	from string // the subscriber that received it
}

func newInbox() *inbox { return &inbox{ch: make(chan tagged, 10000)} }

// handler returns a handler that records deliveries as received by from
// and acknowledges them.
func (in *inbox) handler(from string) broker.Handler {
	return func(_ context.Context, d broker.Delivery) error {
		in.ch <- tagged{d, from}
		return nil
	}
}

// take waits for n deliveries.
func (in *inbox) take(t *testing.T, n int) []tagged {
	t.Helper()
	out := make([]tagged, 0, n)
	timeout := time.After(waitFor)
	for len(out) < n {
		select {
		case d := <-in.ch:
			out = append(out, d)
		case <-timeout:
			t.Fatalf("received %d of %d deliveries in %s", len(out), n, waitFor)
		}
	}
	return out
}

// quiet checks that no delivery arrives for a while.
func (in *inbox) quiet(t *testing.T) {
	t.Helper()
	select {
	case d := <-in.ch:
		t.Fatalf("unexpected delivery: topic %s id %q seq %d attempt %d", d.Topic, d.ID, d.Seq, d.Attempt)
	case <-time.After(quietFor):
	}
}

func publish(t *testing.T, b broker.Broker, m broker.Message) uint64 {
	t.Helper()
	seq, err := b.Publish(context.Background(), m)
	if err != nil {
		t.Fatalf("publish %s %q: %v", m.Topic, m.ID, err)
	}
	if seq == 0 {
		t.Fatalf("publish %s %q: sequence 0", m.Topic, m.ID)
	}
	return seq
}

// publishN publishes n messages to topic with ids prefix-0 ... and
// returns their sequences.
func publishN(t *testing.T, b broker.Broker, topic, prefix string, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, n)
	for i := range n {
		seqs[i] = publish(t, b, broker.Message{ID: prefix + "-" + strconv.Itoa(i), Topic: topic, Data: []byte(strconv.Itoa(i))})
	}
	return seqs
}

func subscribe(t *testing.T, b broker.Broker, s broker.Subscription, h broker.Handler) broker.Subscriber {
	t.Helper()
	sub, err := b.Subscribe(context.Background(), s, h)
	if err != nil {
		t.Fatalf("subscribe %+v: %v", s, err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

func seqsOf(ds []tagged) []uint64 {
	out := make([]uint64, len(ds))
	for i, d := range ds {
		out[i] = d.Seq
	}
	return out
}

func testPublishReceive(t *testing.T, open Open) {
	b := open(t)
	if err := b.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	in := newInbox()
	subscribe(t, b, broker.Subscription{Topics: []string{"records.posts"}}, in.handler("a"))

	publish(t, b, broker.Message{ID: "other", Topic: "records.users", Data: []byte("not for us")})
	want := broker.Message{
		ID:     "evt-1",
		Topic:  "records.posts",
		Key:    "posts/1",
		Data:   []byte(`{"title":"hello"}`),
		Header: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "X-Mixed-Case": "v"},
	}
	before := time.Now()
	seq := publish(t, b, want)

	d := in.take(t, 1)[0]
	if d.ID != want.ID || d.Topic != want.Topic || d.Key != want.Key || string(d.Data) != string(want.Data) {
		t.Errorf("delivery = id %q topic %q key %q data %q, want %q %q %q %q",
			d.ID, d.Topic, d.Key, d.Data, want.ID, want.Topic, want.Key, want.Data)
	}
	if len(d.Header) != len(want.Header) {
		t.Errorf("header = %v, want %v", d.Header, want.Header)
	}
	for k, v := range want.Header {
		if d.Header[k] != v {
			t.Errorf("header %q = %q, want %q", k, d.Header[k], v)
		}
	}
	if d.Seq != seq {
		t.Errorf("delivery seq = %d, publish returned %d", d.Seq, seq)
	}
	if d.Attempt != 1 || d.Redelivered() {
		t.Errorf("attempt = %d, redelivered = %v; want 1, false", d.Attempt, d.Redelivered())
	}
	if d.Time.Before(before.Add(-time.Minute)) || d.Time.After(time.Now().Add(time.Minute)) {
		t.Errorf("delivery time %s is far from now %s", d.Time, before)
	}
	in.quiet(t)
}

func testTopicPatterns(t *testing.T, open Open) {
	b := open(t)
	one, rest, both := newInbox(), newInbox(), newInbox()
	subscribe(t, b, broker.Subscription{Topics: []string{"records.*"}}, one.handler("one"))
	subscribe(t, b, broker.Subscription{Topics: []string{"records.>"}}, rest.handler("rest"))
	subscribe(t, b, broker.Subscription{Topics: []string{"records.posts", "jobs.>"}}, both.handler("both"))

	publish(t, b, broker.Message{ID: "1", Topic: "records.posts"})
	publish(t, b, broker.Message{ID: "2", Topic: "records.posts.comments"})
	publish(t, b, broker.Message{ID: "3", Topic: "jobs.email.send"})
	publish(t, b, broker.Message{ID: "4", Topic: "records"})

	ids := func(ds []tagged) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	for _, c := range []struct {
		in   *inbox
		want []string
	}{{one, []string{"1"}}, {rest, []string{"1", "2"}}, {both, []string{"1", "3"}}} {
		got := ids(c.in.take(t, len(c.want)))
		if !slices.Equal(got, c.want) {
			t.Errorf("received %v, want %v", got, c.want)
		}
		c.in.quiet(t)
	}
}

func testKeyOrder(t *testing.T, open Open) {
	b := open(t)
	const keys, perKey = 4, 50
	fan, group := newInbox(), newInbox()
	subscribe(t, b, broker.Subscription{Topics: []string{"records.>"}}, fan.handler("fan"))
	subscribe(t, b, broker.Subscription{Group: "ordered", Topics: []string{"records.>"}}, group.handler("group"))

	var wg sync.WaitGroup
	errs := make(chan error, keys)
	for k := range keys {
		wg.Go(func() {
			for i := range perKey {
				_, err := b.Publish(context.Background(), broker.Message{
					ID:    fmt.Sprintf("k%d-%d", k, i),
					Topic: "records.posts",
					Key:   fmt.Sprintf("posts/%d", k),
					Data:  []byte(strconv.Itoa(i)),
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("publish: %v", err)
	}

	for name, in := range map[string]*inbox{"fan-out": fan, "group": group} {
		ds := in.take(t, keys*perKey)
		next := map[string]int{}
		for _, d := range ds {
			i, _ := strconv.Atoi(string(d.Data))
			if i != next[d.Key] {
				t.Fatalf("%s: key %s: got message %d, want %d", name, d.Key, i, next[d.Key])
			}
			next[d.Key]++
		}
		if !slices.IsSorted(seqsOf(ds)) {
			t.Errorf("%s: deliveries not in stream order: %v", name, seqsOf(ds))
		}
		in.quiet(t)
	}
}

func testGroupSharesWork(t *testing.T, open Open) {
	b := open(t)
	const n = 100
	workers, audit := newInbox(), newInbox()
	subscribe(t, b, broker.Subscription{Group: "workers", Topics: []string{"jobs.>"}}, workers.handler("w1"))
	subscribe(t, b, broker.Subscription{Group: "workers", Topics: []string{"jobs.>"}}, workers.handler("w2"))
	subscribe(t, b, broker.Subscription{Group: "audit", Topics: []string{"jobs.>"}}, audit.handler("audit"))

	publishN(t, b, "jobs.email", "job", n)

	seen := map[string]string{}
	for _, d := range workers.take(t, n) {
		if prev, dup := seen[d.ID]; dup {
			t.Errorf("message %s delivered to %s and %s", d.ID, prev, d.from)
		}
		seen[d.ID] = d.from
	}
	workers.quiet(t)
	if len(seen) != n {
		t.Errorf("group received %d distinct messages, want %d", len(seen), n)
	}
	if got := audit.take(t, n); len(got) != n {
		t.Errorf("second group received %d messages, want %d", len(got), n)
	}
	audit.quiet(t)
}

func testFanOut(t *testing.T, open Open) {
	b := open(t)
	const n = 50
	a, c := newInbox(), newInbox()
	subscribe(t, b, broker.Subscription{Topics: []string{"records.posts"}}, a.handler("a"))
	subscribe(t, b, broker.Subscription{Topics: []string{"records.posts"}}, c.handler("c"))
	want := publishN(t, b, "records.posts", "m", n)
	for name, in := range map[string]*inbox{"a": a, "c": c} {
		if got := seqsOf(in.take(t, n)); !slices.Equal(got, want) {
			t.Errorf("subscriber %s received %v, want %v", name, got, want)
		}
		in.quiet(t)
	}
}

func testRetryAfterError(t *testing.T, open Open) {
	b := open(t)
	retry := broker.Backoff{Min: 40 * time.Millisecond, Max: 160 * time.Millisecond}
	type attempt struct {
		d  broker.Delivery
		at time.Time
	}
	attempts := make(chan attempt, 100)
	handler := func(_ context.Context, d broker.Delivery) error {
		attempts <- attempt{d, time.Now()}
		if d.ID == "flaky" && d.Attempt < 3 {
			return errors.New("not yet")
		}
		return nil
	}
	sub := subscribe(t, b, broker.Subscription{Group: "retry", Topics: []string{"jobs.>"}, Retry: retry}, handler)
	publish(t, b, broker.Message{ID: "flaky", Topic: "jobs.webhook"})
	publish(t, b, broker.Message{ID: "steady", Topic: "jobs.webhook"})

	var flaky []attempt
	steady := 0
	timeout := time.After(waitFor)
	for len(flaky) < 3 || steady < 1 {
		select {
		case a := <-attempts:
			if a.d.ID == "flaky" {
				flaky = append(flaky, a)
			} else {
				steady++
			}
		case <-timeout:
			t.Fatalf("flaky delivered %d times, steady %d times; want 3 and 1", len(flaky), steady)
		}
	}
	for i, a := range flaky {
		if a.d.Attempt != i+1 || a.d.Redelivered() != (i > 0) {
			t.Errorf("flaky delivery %d: attempt %d redelivered %v", i+1, a.d.Attempt, a.d.Redelivered())
		}
	}
	// The backoff doubles: at least Min before the second delivery, 2*Min
	// before the third (less a little for timer granularity).
	if gap := flaky[1].at.Sub(flaky[0].at); gap < retry.Min*8/10 {
		t.Errorf("second delivery %s after the first, want at least %s", gap, retry.Min)
	}
	if gap := flaky[2].at.Sub(flaky[1].at); gap < 2*retry.Min*8/10 {
		t.Errorf("third delivery %s after the second, want at least %s", gap, 2*retry.Min)
	}

	// Acknowledged: never delivered again, not even to a new member.
	select {
	case a := <-attempts:
		t.Fatalf("delivered again after success: %s attempt %d", a.d.ID, a.d.Attempt)
	case <-time.After(2 * retry.Max):
	}
	sub.Close()
	in := newInbox()
	subscribe(t, b, broker.Subscription{Group: "retry", Topics: []string{"jobs.>"}, From: broker.Beginning()}, in.handler("again"))
	in.quiet(t)
}

func testDeduplicate(t *testing.T, open Open) {
	b := open(t)
	m := broker.Message{ID: "evt-dup", Topic: "records.posts", Data: []byte("once")}
	first := publish(t, b, m)
	second := publish(t, b, m)
	if second != first {
		t.Errorf("duplicate publish returned seq %d, first %d", second, first)
	}
	other := publish(t, b, broker.Message{ID: "evt-other", Topic: "records.posts"})
	if other <= first {
		t.Errorf("next message seq %d not after %d", other, first)
	}
	in := newInbox()
	subscribe(t, b, broker.Subscription{Topics: []string{"records.posts"}, From: broker.Beginning()}, in.handler("a"))
	got := in.take(t, 2)
	if got[0].ID != "evt-dup" || got[1].ID != "evt-other" {
		t.Errorf("received %q, %q; want evt-dup, evt-other", got[0].ID, got[1].ID)
	}
	in.quiet(t)
}

func testPublishAll(t *testing.T, open Open) {
	b := open(t)
	ctx := context.Background()
	if res := b.PublishAll(ctx, nil); len(res) != 0 {
		t.Errorf("PublishAll of nothing: %v", res)
	}
	msgs := []broker.Message{
		{ID: "a", Topic: "records.posts", Key: "posts/1", Data: []byte("a")},
		{ID: "bad", Topic: "records..posts"},
		{ID: "b", Topic: "records.users", Key: "users/1", Data: []byte("b")},
		{ID: "a", Topic: "records.posts", Key: "posts/1", Data: []byte("a again")},
		{ID: "c", Topic: "records.posts", Key: "posts/1", Data: []byte("c")},
	}
	res := b.PublishAll(ctx, msgs)
	if len(res) != len(msgs) {
		t.Fatalf("%d results for %d messages", len(res), len(msgs))
	}
	for _, i := range []int{0, 2, 3, 4} {
		if res[i].Err != nil || res[i].Seq == 0 {
			t.Fatalf("message %d (%s): seq %d, err %v", i, msgs[i].ID, res[i].Seq, res[i].Err)
		}
	}
	if !errors.Is(res[1].Err, broker.ErrInvalid) {
		t.Errorf("malformed message: %v, want ErrInvalid", res[1].Err)
	}
	if res[3].Seq != res[0].Seq {
		t.Errorf("duplicate: seq %d, first copy %d", res[3].Seq, res[0].Seq)
	}
	if !(res[0].Seq < res[2].Seq && res[2].Seq < res[4].Seq) {
		t.Errorf("seqs %d, %d, %d not in the order given", res[0].Seq, res[2].Seq, res[4].Seq)
	}

	// Many messages of one key arrive in the order given.
	const n = 300
	many := make([]broker.Message, n)
	for i := range many {
		many[i] = broker.Message{ID: "m-" + strconv.Itoa(i), Topic: "records.posts", Key: "posts/2", Data: []byte(strconv.Itoa(i))}
	}
	for i, r := range b.PublishAll(ctx, many) {
		if r.Err != nil {
			t.Fatalf("message %d of %d: %v", i, n, r.Err)
		}
	}
	in := newInbox()
	subscribe(t, b, broker.Subscription{Topics: []string{"records.>"}, From: broker.Beginning()}, in.handler("a"))
	got := in.take(t, 3+n)
	want := []string{"a", "b", "c"}
	for i := range n {
		want = append(want, strconv.Itoa(i))
	}
	var data []string
	for _, d := range got {
		data = append(data, string(d.Data))
	}
	if !slices.Equal(data, want) {
		t.Errorf("received %q\nwant %q", data, want)
	}
	in.quiet(t)
}

func testReplay(t *testing.T, open Open) {
	b := open(t)
	const n = 10
	seqs := make([]uint64, n)
	for i := range n {
		seqs[i] = publish(t, b, broker.Message{ID: strconv.Itoa(i), Topic: "records.posts"})
		time.Sleep(2 * time.Millisecond) // distinct store times for AtTime
	}

	all := newInbox()
	subscribe(t, b, broker.Subscription{Topics: []string{"records.posts"}, From: broker.Beginning()}, all.handler("all"))
	stored := all.take(t, n)
	if got := seqsOf(stored); !slices.Equal(got, seqs) {
		t.Fatalf("from beginning: %v, want %v", got, seqs)
	}

	cases := []struct {
		name  string
		group string
		from  broker.Position
		want  []uint64
	}{
		{"AtSeq", "", broker.AtSeq(seqs[4]), seqs[4:]},
		{"AtTime", "", broker.AtTime(stored[6].Time), seqs[6:]},
		{"GroupAtSeq", "replayer", broker.AtSeq(seqs[7]), seqs[7:]},
		{"GroupBeginning", "archiver", broker.Beginning(), seqs},
		{"New", "", broker.New(), nil},
	}
	for _, c := range cases {
		in := newInbox()
		subscribe(t, b, broker.Subscription{Group: c.group, Topics: []string{"records.posts"}, From: c.from}, in.handler(c.name))
		if got := seqsOf(in.take(t, len(c.want))); !slices.Equal(got, c.want) {
			t.Errorf("%s (%s): %v, want %v", c.name, c.from, got, c.want)
		}
		in.quiet(t)
	}

	// A subscription from New sees what is published after it.
	in := newInbox()
	subscribe(t, b, broker.Subscription{Topics: []string{"records.posts"}}, in.handler("new"))
	seq := publish(t, b, broker.Message{ID: "late", Topic: "records.posts"})
	if d := in.take(t, 1)[0]; d.Seq != seq {
		t.Errorf("from new: got seq %d, want %d", d.Seq, seq)
	}
}

func testGroupResumes(t *testing.T, open Open) {
	b := open(t)
	const n, firstBatch = 10, 5
	seqs := publishN(t, b, "jobs.report", "r", n)
	sub := broker.Subscription{Group: "resume", Topics: []string{"jobs.>"}, From: broker.Beginning()}

	var handled atomic.Int32
	blocked := make(chan struct{})
	first := newInbox()
	s1 := subscribe(t, b, sub, func(ctx context.Context, d broker.Delivery) error {
		if handled.Add(1) <= firstBatch {
			first.ch <- tagged{d, "first"}
			return nil
		}
		close(blocked) // one message at a time: reached once
		<-ctx.Done()
		return ctx.Err()
	})
	got := first.take(t, firstBatch)
	<-blocked
	if err := s1.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if want := seqs[:firstBatch]; !slices.Equal(seqsOf(got), want) {
		t.Fatalf("first member handled %v, want %v", seqsOf(got), want)
	}

	// The group resumes after the acknowledged messages; From is ignored
	// now that the group exists.
	second := newInbox()
	subscribe(t, b, sub, second.handler("second"))
	rest := seqsOf(second.take(t, n-firstBatch))
	slices.Sort(rest)
	if want := seqs[firstBatch:]; !slices.Equal(rest, want) {
		t.Errorf("second member received %v, want %v", rest, want)
	}
	second.quiet(t)
}

func testClose(t *testing.T, open Open) {
	leaks := goleak.IgnoreCurrent()
	b := open(t)
	ctx := context.Background()
	closing, staying := newInbox(), newInbox()
	s1 := subscribe(t, b, broker.Subscription{Topics: []string{"records.>"}}, closing.handler("closing"))
	subscribe(t, b, broker.Subscription{Group: "stay", Topics: []string{"records.>"}}, staying.handler("staying"))
	publish(t, b, broker.Message{ID: "1", Topic: "records.posts"})
	closing.take(t, 1)
	staying.take(t, 1)

	if err := s1.Close(); err != nil {
		t.Fatalf("subscriber close: %v", err)
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("second subscriber close: %v", err)
	}
	publish(t, b, broker.Message{ID: "2", Topic: "records.posts"})
	staying.take(t, 1)
	closing.quiet(t)

	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := b.Publish(ctx, broker.Message{Topic: "records.posts"}); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("publish after close: %v, want ErrClosed", err)
	}
	if res := b.PublishAll(ctx, []broker.Message{{Topic: "records.posts"}}); len(res) != 1 || !errors.Is(res[0].Err, broker.ErrClosed) {
		t.Errorf("PublishAll after close: %v, want ErrClosed", res)
	}
	if _, err := b.Subscribe(ctx, broker.Subscription{Topics: []string{"records.>"}}, staying.handler("late")); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("subscribe after close: %v, want ErrClosed", err)
	}
	if err := b.Ping(ctx); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("ping after close: %v, want ErrClosed", err)
	}
	goleak.VerifyNone(t, leaks)
}

func testCloseWaitsForHandler(t *testing.T, open Open) {
	b := open(t)
	started := make(chan struct{})
	var finished atomic.Bool
	s := subscribe(t, b, broker.Subscription{Group: "slow", Topics: []string{"jobs.>"}}, func(ctx context.Context, _ broker.Delivery) error {
		close(started)
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond)
		finished.Store(true)
		return ctx.Err()
	})
	publish(t, b, broker.Message{ID: "1", Topic: "jobs.slow"})
	select {
	case <-started:
	case <-time.After(waitFor):
		t.Fatal("handler not called")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if !finished.Load() {
		t.Error("Close returned before the running handler")
	}
}

func testContext(t *testing.T, open Open) {
	b := open(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Publish(canceled, broker.Message{Topic: "records.posts"}); !errors.Is(err, context.Canceled) {
		t.Errorf("publish with canceled context: %v, want context.Canceled", err)
	}
	if res := b.PublishAll(canceled, []broker.Message{{Topic: "records.posts"}, {Topic: "records.users"}}); len(res) != 2 ||
		!errors.Is(res[0].Err, context.Canceled) || !errors.Is(res[1].Err, context.Canceled) {
		t.Errorf("PublishAll with canceled context: %v, want context.Canceled", res)
	}
	if _, err := b.Subscribe(canceled, broker.Subscription{Topics: []string{"records.>"}}, newInbox().handler("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("subscribe with canceled context: %v, want context.Canceled", err)
	}
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	if _, err := b.Publish(expired, broker.Message{Topic: "records.posts"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("publish with expired context: %v, want context.DeadlineExceeded", err)
	}

	// Cancelling the subscription's context ends it: the handler's context
	// is cancelled and nothing more is delivered.
	life, end := context.WithCancel(context.Background())
	defer end()
	in := newInbox()
	handlerCtx := make(chan context.Context, 10)
	s, err := b.Subscribe(life, broker.Subscription{Topics: []string{"records.>"}}, func(ctx context.Context, d broker.Delivery) error {
		handlerCtx <- ctx
		return in.handler("life")(ctx, d)
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer s.Close()
	publish(t, b, broker.Message{ID: "1", Topic: "records.posts"})
	in.take(t, 1)
	hctx := <-handlerCtx
	if hctx.Err() != nil {
		t.Fatalf("handler context done while subscribed: %v", hctx.Err())
	}
	end()
	select {
	case <-hctx.Done():
	case <-time.After(waitFor):
		t.Fatal("handler context not cancelled after the subscription's context")
	}
	if err := s.Close(); err != nil {
		t.Errorf("close after cancel: %v", err)
	}
	publish(t, b, broker.Message{ID: "2", Topic: "records.posts"})
	in.quiet(t)
}

func testInvalid(t *testing.T, open Open) {
	b := open(t)
	ctx := context.Background()
	msgs := []broker.Message{
		{Topic: ""},
		{Topic: "records..posts"},
		{Topic: "records.*"},
		{Topic: "records.posts", Header: map[string]string{"Nats-Msg-Id": "x"}},
		{Topic: "records.posts", Header: map[string]string{"Strata-Key": "x"}},
		{Topic: "records.posts", Header: map[string]string{"ok": "line\nbreak"}},
		{Topic: "records.posts", Key: "a\r\nb"},
	}
	for _, m := range msgs {
		if _, err := b.Publish(ctx, m); !errors.Is(err, broker.ErrInvalid) {
			t.Errorf("publish %+v: %v, want ErrInvalid", m, err)
		}
	}
	subs := []broker.Subscription{
		{},
		{Topics: []string{"records.>.posts"}},
		{Group: "a.b", Topics: []string{"records.>"}},
		{Group: "a b", Topics: []string{"records.>"}},
	}
	h := newInbox().handler("x")
	for _, s := range subs {
		if _, err := b.Subscribe(ctx, s, h); !errors.Is(err, broker.ErrInvalid) {
			t.Errorf("subscribe %+v: %v, want ErrInvalid", s, err)
		}
	}
	if _, err := b.Subscribe(ctx, broker.Subscription{Topics: []string{"records.>"}}, nil); !errors.Is(err, broker.ErrInvalid) {
		t.Errorf("subscribe with nil handler: %v, want ErrInvalid", err)
	}
}

// testLast: Last is the newest position, and a subscription from the one
// after it gets exactly the messages published later.
func testLast(t *testing.T, open Open) {
	b := open(t)
	ctx := context.Background()
	last, err := b.Last(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last != 0 {
		t.Fatalf("Last of an empty stream = %d, want 0", last)
	}
	seqs := publishN(t, b, "last.a", "before", 3)
	if last, err = b.Last(ctx); err != nil {
		t.Fatal(err)
	}
	if last != seqs[2] {
		t.Fatalf("Last = %d, want %d, the newest message's", last, seqs[2])
	}
	in := newInbox()
	subscribe(t, b, broker.Subscription{Topics: []string{"last.>"}, From: broker.AtSeq(last + 1)}, in.handler("s"))
	after := publishN(t, b, "last.b", "after", 2)
	for i, d := range in.take(t, 2) {
		if d.Seq != after[i] || d.ID != "after-"+strconv.Itoa(i) {
			t.Errorf("delivery %d: seq %d id %q, want seq %d id after-%d", i, d.Seq, d.ID, after[i], i)
		}
	}
	in.quiet(t)
	b.Close()
	if _, err := b.Last(ctx); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Last after Close: %v, want ErrClosed", err)
	}
}
