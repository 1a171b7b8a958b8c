package natsbroker_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/strata-dev/strata/internal/broker"
	"github.com/strata-dev/strata/internal/broker/brokertest"
	natsbroker "github.com/strata-dev/strata/internal/broker/nats"
	"github.com/strata-dev/strata/internal/broker/nats/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestEmbedded(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		return openEmbedded(t, t.TempDir())
	})
}

func TestExternal(t *testing.T) {
	url := natstest.Env(t, natstest.EnvURL)
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		return openExternal(t, url)
	})
}

func openEmbedded(t *testing.T, dir string) *natsbroker.Broker {
	t.Helper()
	b, err := natsbroker.New(context.Background(), natsbroker.Config{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("new embedded broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// openExternal opens a broker on url with a stream and subject prefix of
// its own, and deletes the stream when the test ends.
func openExternal(t *testing.T, url string) *natsbroker.Broker {
	t.Helper()
	id := randomID()
	stream, prefix := "T_"+id, "t"+id
	b, err := natsbroker.New(context.Background(), natsbroker.Config{
		URL:    url,
		Stream: stream,
		Prefix: prefix,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatalf("new broker on %s: %v", url, err)
	}
	t.Cleanup(func() {
		b.Close()
		deleteStream(t, url, stream)
	})
	return b
}

func deleteStream(t *testing.T, url, stream string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Errorf("connect to delete stream %s: %v", stream, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Error(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, stream); err != nil {
		t.Errorf("delete stream %s: %v", stream, err)
	}
}

func randomID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// testLogger logs to t until the test's cleanup, and drops what comes
// later from goroutines still winding down.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop) // registered first, so it runs last
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// TestEmbeddedRestart reopens the embedded server on the same directory:
// the stream and a group's position survive.
func TestEmbeddedRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b := openEmbedded(t, dir)
	seqs := make([]uint64, 3)
	for i := range seqs {
		seq, err := b.Publish(ctx, broker.Message{ID: strconv.Itoa(i), Topic: "records.posts"})
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		seqs[i] = seq
	}
	got := make(chan broker.Delivery, 10)
	sub := broker.Subscription{Group: "g", Topics: []string{"records.>"}, From: broker.Beginning()}
	s, err := b.Subscribe(ctx, sub, func(_ context.Context, d broker.Delivery) error {
		got <- d
		return nil
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	for range seqs {
		receive(t, got)
	}
	s.Close()
	if err := b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	b = openEmbedded(t, dir)
	seq, err := b.Publish(ctx, broker.Message{ID: "after", Topic: "records.posts"})
	if err != nil {
		t.Fatalf("publish after restart: %v", err)
	}
	if seq != seqs[2]+1 {
		t.Errorf("sequence after restart = %d, want %d", seq, seqs[2]+1)
	}
	if _, err := b.Subscribe(ctx, sub, func(_ context.Context, d broker.Delivery) error {
		got <- d
		return nil
	}); err != nil {
		t.Fatalf("subscribe after restart: %v", err)
	}
	if d := receive(t, got); d.ID != "after" {
		t.Errorf("group resumed at %q (seq %d), want the message published after the restart", d.ID, d.Seq)
	}
}

func receive(t *testing.T, ch <-chan broker.Delivery) broker.Delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery in 10s")
		return broker.Delivery{}
	}
}

// TestExternalRestart stops the server under a connected broker: publishes
// fail fast while it is away, and after it returns on the same storage,
// publishing and both kinds of subscription carry on.
func TestExternalRestart(t *testing.T) {
	srv := natstest.Start(t)
	ctx := context.Background()
	b, err := natsbroker.New(ctx, natsbroker.Config{URL: srv.URL(), ReconnectWait: 50 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	t.Cleanup(func() { b.Close() })

	group, fan := make(chan broker.Delivery, 100), make(chan broker.Delivery, 100)
	for _, c := range []struct {
		group string
		ch    chan broker.Delivery
	}{{"workers", group}, {"", fan}} {
		_, err := b.Subscribe(ctx, broker.Subscription{Group: c.group, Topics: []string{"records.>"}}, func(_ context.Context, d broker.Delivery) error {
			c.ch <- d
			return nil
		})
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
	}
	if _, err := b.Publish(ctx, broker.Message{ID: "before", Topic: "records.posts"}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	receiveID(t, group, "before")
	receiveID(t, fan, "before")

	srv.Stop()
	waitFor(t, "ping to fail", func() bool { return b.Ping(ctx) != nil })
	if err := b.Ping(ctx); !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("ping while away: %v, want ErrUnavailable", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	start := time.Now()
	_, err = b.Publish(pctx, broker.Message{ID: "away", Topic: "records.posts"})
	cancel()
	if !errors.Is(err, broker.ErrUnavailable) {
		t.Errorf("publish while away: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("publish while away took %s", took)
	}

	srv.Start()
	waitFor(t, "ping to succeed", func() bool { return b.Ping(ctx) == nil })
	if _, err := b.Publish(ctx, broker.Message{ID: "after", Topic: "records.posts"}); err != nil {
		t.Fatalf("publish after restart: %v", err)
	}
	receiveID(t, group, "after")
	receiveID(t, fan, "after")
}

// TestPublishAllUnanswered: PublishAll gives up on acknowledgements that
// do not come, after Config.PublishTimeout or when its context ends first.
func TestPublishAllUnanswered(t *testing.T) {
	srv := natstest.Start(t)
	ctx := context.Background()
	const timeout = 300 * time.Millisecond
	b, err := natsbroker.New(ctx, natsbroker.Config{URL: srv.URL(), PublishTimeout: timeout, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	// Without the stream, a plain subscriber takes the publishes and
	// never answers them.
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, "STRATA"); err != nil {
		t.Fatalf("delete stream: %v", err)
	}
	sub, err := nc.SubscribeSync("strata.>")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	msgs := []broker.Message{{ID: "1", Topic: "records.posts"}, {ID: "2", Topic: "records.posts"}, {ID: "3", Topic: "records.users"}}

	start := time.Now()
	res := b.PublishAll(ctx, msgs)
	took := time.Since(start)
	for i, r := range res {
		if !errors.Is(r.Err, broker.ErrUnavailable) {
			t.Errorf("message %d: %v, want ErrUnavailable", i, r.Err)
		}
	}
	if took < timeout || took > 4*timeout {
		t.Errorf("gave up after %s, want about %s", took, timeout)
	}
	if _, err := sub.NextMsg(time.Second); err != nil {
		t.Fatalf("the messages were not sent: %v", err)
	}

	cctx, cancel := context.WithTimeout(ctx, timeout/6)
	defer cancel()
	start = time.Now()
	res = b.PublishAll(cctx, msgs)
	took = time.Since(start)
	for i, r := range res {
		if !errors.Is(r.Err, context.DeadlineExceeded) || !errors.Is(r.Err, broker.ErrUnavailable) {
			t.Errorf("message %d with a short context: %v, want ErrUnavailable and DeadlineExceeded", i, r.Err)
		}
	}
	if took >= timeout {
		t.Errorf("a context of %s: gave up after %s", timeout/6, took)
	}
}

// receiveID waits for the message id, skipping redeliveries of "before"
// (delivery is at least once).
func receiveID(t *testing.T, ch <-chan broker.Delivery, id string) {
	t.Helper()
	for {
		d := receive(t, ch)
		if d.ID == id {
			return
		}
		if d.ID != "before" {
			t.Fatalf("received %q, want %q", d.ID, id)
		}
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestNewInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  natsbroker.Config
	}{
		{"neither URL nor Dir", natsbroker.Config{}},
		{"URL and Dir", natsbroker.Config{URL: "nats://127.0.0.1:4222", Dir: dir}},
		{"bad URL", natsbroker.Config{URL: "http://127.0.0.1:4222"}},
		{"bad stream", natsbroker.Config{Dir: dir, Stream: "A.B"}},
		{"bad prefix", natsbroker.Config{Dir: dir, Prefix: "a.*"}},
		{"bad listen", natsbroker.Config{Dir: dir, Listen: "nowhere"}},
		{"duplicates beyond age", natsbroker.Config{Dir: dir, MaxAge: time.Minute, Duplicates: time.Hour}},
	}
	for _, tt := range tests {
		b, err := natsbroker.New(context.Background(), tt.cfg)
		if !errors.Is(err, broker.ErrInvalid) {
			t.Errorf("%s: New = %v, want ErrInvalid", tt.name, err)
		}
		if b != nil {
			b.Close()
		}
	}
}

func TestEmbeddedListen(t *testing.T) {
	port := natstest.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	b, err := natsbroker.New(context.Background(), natsbroker.Config{Dir: filepath.Join(t.TempDir(), "nats"), Listen: addr, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	defer b.Close()
	seq, err := b.Publish(context.Background(), broker.Message{ID: "1", Topic: "records.posts", Data: []byte("x")})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	// Another client reaches the embedded server over TCP and sees it.
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatalf("connect over TCP: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(context.Background(), "STRATA")
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	m, err := s.GetMsg(context.Background(), seq)
	if err != nil || string(m.Data) != "x" || m.Subject != "strata.records.posts" {
		t.Fatalf("GetMsg(%d) = %+v, %v", seq, m, err)
	}
}

func TestParseServers(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"nats://a:4222", []string{"nats://a:4222"}},
		{"a:4222, b:4223 ,", []string{"nats://a:4222", "nats://b:4223"}},
		{"tls://user:pa%40ss@host:1", []string{"tls://user:pa%40ss@host:1"}},
		{"nats://[::1]:4222/", []string{"nats://[::1]:4222"}},
		{"wss://h", []string{"wss://h"}},
	}
	for _, tt := range tests {
		got, err := natsbroker.ParseServers(tt.in)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("ParseServers(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", " , ", "http://a:1", "nats://", "nats://a:0", "nats://a:70000", "nats://a:", "nats://a:1/path", "nats://a:1?x=1", "nats://a:1#f", "nats:a"} {
		if got, err := natsbroker.ParseServers(bad); !errors.Is(err, broker.ErrInvalid) {
			t.Errorf("ParseServers(%q) = %q, %v; want ErrInvalid", bad, got, err)
		}
	}
}

func FuzzParseServers(f *testing.F) {
	for _, s := range []string{"nats://a:4222", "a:1,b:2", "tls://u:p@h:1", "nats://[::1]:4222", "ws://h/", "http://x", "nats://a:1/p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		urls, err := natsbroker.ParseServers(s)
		if err != nil {
			if !errors.Is(err, broker.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if len(urls) == 0 {
			t.Fatalf("ParseServers(%q) accepted no URL", s)
		}
		// Canonical output parses to itself.
		for _, u := range urls {
			again, err := natsbroker.ParseServers(u)
			if err != nil || len(again) != 1 || again[0] != u {
				t.Fatalf("ParseServers(%q) gave %q, which reparses as %q, %v", s, u, again, err)
			}
		}
	})
}

// TestFanoutConsumerLost deletes a fan-out subscription's consumer behind
// its back: the subscriber recreates it where it left off, losing nothing.
func TestFanoutConsumerLost(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(natstest.FreePort(t))
	b, err := natsbroker.New(context.Background(), natsbroker.Config{Dir: t.TempDir(), Listen: addr, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	got := make(chan broker.Delivery, 10)
	if _, err := b.Subscribe(ctx, broker.Subscription{Topics: []string{"records.>"}}, func(_ context.Context, d broker.Delivery) error {
		got <- d
		return nil
	}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	publishID := func(id string) {
		t.Helper()
		if _, err := b.Publish(ctx, broker.Message{ID: id, Topic: "records.posts"}); err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
	}
	publishID("1")
	receiveID(t, got, "1")

	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, "STRATA")
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	names := s.ConsumerNames(ctx)
	var deleted int
	for name := range names.Name() {
		if err := s.DeleteConsumer(ctx, name); err != nil {
			t.Fatalf("delete consumer %s: %v", name, err)
		}
		deleted++
	}
	if names.Err() != nil || deleted != 1 {
		t.Fatalf("deleted %d consumers (%v), want 1", deleted, names.Err())
	}
	publishID("2")
	publishID("3")
	for _, id := range []string{"2", "3"} {
		if d := receive(t, got); d.ID != id {
			t.Fatalf("after the consumer was lost: received %q, want %q", d.ID, id)
		}
	}
}
