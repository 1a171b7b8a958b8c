package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/broker"
	natsbroker "github.com/strata-dev/strata/internal/broker/nats"
	"github.com/strata-dev/strata/internal/broker/nats/natstest"
	"github.com/strata-dev/strata/internal/outbox"
	"github.com/strata-dev/strata/internal/query"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// service returns a records service writing events, with a collection
// "notes" (title, secret hidden, unique slug) whose create rule refuses
// titles "forbidden" to non-superusers.
func service(t *testing.T, db *store.DB, w *outbox.Writer) *records.Service {
	t.Helper()
	ctx := context.Background()
	s, err := records.New(ctx, records.Options{DB: db, Secret: []byte("k"), Events: w})
	if err != nil {
		t.Fatal(err)
	}
	rule := `title != "forbidden"`
	_, err = s.CreateCollection(ctx, &schema.Collection{Name: "notes", Fields: []*schema.Field{
		{Name: "title", Type: schema.Text},
		{Name: "secret", Type: schema.Text, Hidden: true},
		{Name: "slug", Type: schema.Text, Unique: true},
	}, Rules: schema.Rules{Create: &rule}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func events(t *testing.T, db *store.DB) []outbox.Event {
	t.Helper()
	rows, err := db.PendingOutbox(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]outbox.Event, len(rows))
	for i, r := range rows {
		if err := json.Unmarshal(r.Data, &out[i]); err != nil {
			t.Fatal(err)
		}
		if r.ID != out[i].ID || r.Topic != "records.notes" || r.Key != "notes/"+out[i].RecordID {
			t.Errorf("row %+v does not match its event %+v", r, out[i])
		}
	}
	return out
}

// TestEventsCommitWithChanges: a change that commits has exactly one
// event, in order, with the record; one that fails has none.
func TestEventsCommitWithChanges(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, engine)
			notified := 0
			s := service(t, db, &outbox.Writer{Notify: func() { notified++ }})
			c, err := s.Create(ctx, "notes", map[string]json.RawMessage{"title": raw(`"a"`), "secret": raw(`"s3"`), "slug": raw(`"a"`)}, records.WriteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			id := c.Record.ID
			if _, err := s.Update(ctx, "notes", id, map[string]json.RawMessage{"title": raw(`"b"`)}, false, records.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			// Failures roll back with their events: a unique violation, a
			// create rule that refuses the stored record, a stale If-Match.
			if _, err := s.Create(ctx, "notes", map[string]json.RawMessage{"slug": raw(`"a"`)}, records.WriteOptions{}); err == nil {
				t.Fatal("duplicate slug accepted")
			}
			user := records.WithCaller(ctx, &records.Caller{Request: &query.Request{}})
			if _, err := s.Create(user, "notes", map[string]json.RawMessage{"title": raw(`"forbidden"`)}, records.WriteOptions{}); apperr.KindOf(err) != apperr.Forbidden {
				t.Fatalf("create refused by rule: %v", err)
			}
			if err := s.Delete(ctx, "notes", id, records.WriteOptions{IfMatch: `"stale"`}); err == nil {
				t.Fatal("delete with a stale If-Match accepted")
			}
			if err := s.Delete(ctx, "notes", id, records.WriteOptions{}); err != nil {
				t.Fatal(err)
			}

			evs := events(t, db)
			var ops []string
			for _, e := range evs {
				ops = append(ops, e.Op)
				if e.RecordID != id || e.Collection != "notes" || e.Time.IsZero() {
					t.Errorf("event %+v", e)
				}
			}
			if !slices.Equal(ops, []string{"create", "update", "delete"}) {
				t.Fatalf("events %v, want create, update, delete", ops)
			}
			var last map[string]any
			json.Unmarshal(evs[2].Record, &last)
			if last["title"] != "b" || last["secret"] != "s3" || last["id"] != id {
				t.Errorf("the delete event carries %v, want the record as it was, hidden fields included", last)
			}
			if notified != 3 {
				t.Errorf("Notify called %d times, want once per committed change (3)", notified)
			}
		})
	}
}

// TestAuthEventsKeepNoPasswordHash: events of auth records never carry
// the password hash.
func TestAuthEventsKeepNoPasswordHash(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	s, err := records.New(ctx, records.Options{DB: db, Secret: []byte("k"), Events: &outbox.Writer{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateCollection(ctx, &schema.Collection{Name: "members", Type: schema.Auth}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Create(ctx, "members", map[string]json.RawMessage{"email": raw(`"a@example.com"`)},
		records.WriteOptions{Set: schema.Values{schema.FieldPasswordHash: "$argon2id$secret-hash"}})
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := db.PendingOutbox(ctx, 10)
	if len(rows) != 1 {
		t.Fatalf("%d events, want 1", len(rows))
	}
	var e outbox.Event
	json.Unmarshal(rows[0].Data, &e)
	var rec map[string]any
	json.Unmarshal(e.Record, &rec)
	if _, ok := rec[schema.FieldPasswordHash]; ok || rec["email"] != "a@example.com" {
		t.Errorf("auth event record: %v", rec)
	}
}

// collector is an idempotent consumer: it counts every delivery and keeps
// the events by id.
type collector struct {
	mu       sync.Mutex
	seen     map[string]outbox.Event
	order    map[string][]string // record id -> ops in delivery order
	dups     int
	received chan struct{}
}

func newCollector() *collector {
	return &collector{seen: map[string]outbox.Event{}, order: map[string][]string{}, received: make(chan struct{}, 1)}
}

func (c *collector) handle(_ context.Context, d broker.Delivery) error {
	var e outbox.Event
	if err := json.Unmarshal(d.Data, &e); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[e.ID]; ok {
		c.dups++
		return nil
	}
	c.seen[e.ID] = e
	c.order[e.RecordID] = append(c.order[e.RecordID], e.Op)
	select {
	case c.received <- struct{}{}:
	default:
	}
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// waitFor waits until the collector has n distinct events.
func (c *collector) waitFor(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for c.count() < n {
		select {
		case <-c.received:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("received %d events, want %d", c.count(), n)
		}
	}
}

func subscribe(t *testing.T, b broker.Broker, c *collector) {
	t.Helper()
	sub, err := b.Subscribe(context.Background(), broker.Subscription{Group: "test", Topics: []string{"records.>"},
		From: broker.Beginning()}, c.handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
}

func embedded(t *testing.T) *natsbroker.Broker { return embeddedB(t) }

func embeddedB(t testing.TB) *natsbroker.Broker {
	t.Helper()
	b, err := natsbroker.New(context.Background(), natsbroker.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// writeLoad creates and updates records from several goroutines until
// stop closes, and returns the ids and how many changes committed per
// record.
func writeLoad(t *testing.T, s *records.Service, stop <-chan struct{}, max int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	done := map[string]int{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			ctx := context.Background()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				n := len(done)
				mu.Unlock()
				if max > 0 && n >= max {
					return
				}
				c, err := s.Create(ctx, "notes", map[string]json.RawMessage{"title": raw(fmt.Sprintf(`"w%d-%d"`, w, i))}, records.WriteOptions{})
				if err != nil {
					t.Errorf("create: %v", err)
					return
				}
				id := c.Record.ID
				mu.Lock()
				done[id] = 1
				mu.Unlock()
				if _, err := s.Update(ctx, "notes", id, map[string]json.RawMessage{"title": raw(`"updated"`)}, false, records.WriteOptions{}); err != nil {
					t.Errorf("update: %v", err)
					return
				}
				mu.Lock()
				done[id] = 2
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return done
}

func checkDelivered(t *testing.T, c *collector, done map[string]int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, n := range done {
		want := []string{"create", "update"}[:n]
		if got := c.order[id]; !slices.Equal(got, want) {
			t.Errorf("record %s: delivered %v, want %v", id, got, want)
		}
	}
}

func runRelay(t *testing.T, cfg outbox.RelayConfig) *outbox.Relay {
	t.Helper()
	r := outbox.NewRelay(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// TestRelayDeliversEveryEventOnce: under concurrent writes every event
// reaches a consumer once and in order for its record, and the outbox is
// left with nothing pending.
func TestRelayDeliversEveryEventOnce(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			db := storetest.Open(t, engine)
			b := embedded(t)
			w := &outbox.Writer{}
			s := service(t, db, w)
			r := runRelay(t, outbox.RelayConfig{DB: db, Publisher: b, Poll: time.Second})
			w.Notify = r.Notify
			c := newCollector()
			subscribe(t, b, c)
			done := writeLoad(t, s, nil, 100)
			c.waitFor(t, 2*len(done), 20*time.Second)
			checkDelivered(t, c, done)
			if c.dups != 0 {
				t.Errorf("%d duplicate deliveries without any failure", c.dups)
			}
			waitEmpty(t, db)
		})
	}
}

func waitEmpty(t *testing.T, db *store.DB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _, err := db.OutboxBacklog(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still pending", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRelaySurvivesBrokerOutage stops a real NATS server under write load
// for a while: writes keep succeeding, and once it is back every committed
// change's event is delivered, none twice to the idempotent consumer.
func TestRelaySurvivesBrokerOutage(t *testing.T) {
	srv := natstest.Start(t)
	db := storetest.Open(t, "sqlite")
	b, err := natsbroker.New(context.Background(), natsbroker.Config{URL: srv.URL(), ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	w := &outbox.Writer{}
	s := service(t, db, w)
	r := runRelay(t, outbox.RelayConfig{DB: db, Publisher: b, Poll: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		PublishTimeout: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	w.Notify = r.Notify
	c := newCollector()
	subscribe(t, b, c)

	stop := make(chan struct{})
	result := make(chan map[string]int, 1)
	go func() { result <- writeLoad(t, s, stop, 0) }()
	time.Sleep(200 * time.Millisecond)
	srv.Stop()
	time.Sleep(time.Second)
	srv.Start()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	done := <-result
	total := 0
	for _, n := range done {
		total += n
	}
	if total < 10 {
		t.Fatalf("only %d changes written", total)
	}
	c.waitFor(t, total, 30*time.Second)
	checkDelivered(t, c, done)
	waitEmpty(t, db)
	t.Logf("%d changes, %d duplicate deliveries absorbed by the consumer", total, c.dups)
}

// flaky publishes through a real broker but fails the first publish of
// one event, and records the messages of each PublishAll.
type flaky struct {
	broker.Broker
	failID string

	mu     sync.Mutex
	failed bool
	calls  [][]broker.Message
}

func (f *flaky) PublishAll(ctx context.Context, msgs []broker.Message) []broker.Result {
	f.mu.Lock()
	f.calls = append(f.calls, msgs)
	fail := -1
	if !f.failed {
		fail = slices.IndexFunc(msgs, func(m broker.Message) bool { return m.ID == f.failID })
		f.failed = fail >= 0
	}
	f.mu.Unlock()
	if fail < 0 {
		return f.Broker.PublishAll(ctx, msgs)
	}
	rest := slices.Delete(slices.Clone(msgs), fail, fail+1)
	res := f.Broker.PublishAll(ctx, rest)
	return slices.Insert(res, fail, broker.Result{Err: fmt.Errorf("publish: %w: injected", broker.ErrUnavailable)})
}

// TestRelayKeyOrderAfterFailure: the relay sends the events of different
// records together and those of one record one after another; when one
// fails, the later events of its record wait for it, so the stream holds
// every record's events in the order they were written.
func TestRelayKeyOrderAfterFailure(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	w := &outbox.Writer{}
	s := service(t, db, w)
	for i := range 4 {
		c, err := s.Create(ctx, "notes", map[string]json.RawMessage{"title": raw(fmt.Sprintf(`"n%d"`, i))}, records.WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			if _, err := s.Update(ctx, "notes", c.Record.ID, map[string]json.RawMessage{"title": raw(fmt.Sprintf(`"n%d-%d"`, i, j))}, false, records.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	written := map[string][]string{} // record id -> its event ids, as written
	all := events(t, db)
	for _, e := range all {
		written[e.RecordID] = append(written[e.RecordID], e.ID)
	}
	b := embedded(t)
	p := &flaky{Broker: b, failID: all[1].ID} // the first record's first update
	runRelay(t, outbox.RelayConfig{DB: db, Publisher: p, Poll: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	waitEmpty(t, db)

	p.mu.Lock()
	if !p.failed {
		t.Fatal("the injected failure never happened")
	}
	if first := p.calls[0]; len(first) != len(written) {
		t.Errorf("the first round sent %d events, want one for each of %d records", len(first), len(written))
	}
	p.mu.Unlock()
	var (
		mu     sync.Mutex
		stream = map[string][]string{}
		n      int
		got    = make(chan struct{}, len(all))
	)
	sub, err := b.Subscribe(ctx, broker.Subscription{Topics: []string{"records.>"}, From: broker.Beginning()}, func(_ context.Context, d broker.Delivery) error {
		var e outbox.Event
		if err := json.Unmarshal(d.Data, &e); err != nil {
			return err
		}
		mu.Lock()
		stream[e.RecordID] = append(stream[e.RecordID], e.ID)
		n++
		mu.Unlock()
		got <- struct{}{}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for range all {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("received %d of %d events", n, len(all))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id, want := range written {
		if !slices.Equal(stream[id], want) {
			t.Errorf("record %s: stream holds %v, written %v", id, stream[id], want)
		}
	}
}

// TestOneRelayAtATime: relays on two nodes sharing the database take turns
// through the lease, so events are published once; when the holder stops,
// the other takes over.
func TestOneRelayAtATime(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			db := storetest.Open(t, engine)
			b := embedded(t)
			s := service(t, db, &outbox.Writer{})
			c := newCollector()
			subscribe(t, b, c)
			cfg := outbox.RelayConfig{DB: db, Publisher: b, Poll: 10 * time.Millisecond, LeaseTTL: 300 * time.Millisecond}
			cfg.Node = "a"
			ra := outbox.NewRelay(cfg)
			cfg.Node = "b"
			runRelay(t, cfg)
			actx, stopA := context.WithCancel(context.Background())
			aDone := make(chan struct{})
			go func() { ra.Run(actx); close(aDone) }()
			done := writeLoad(t, s, nil, 50)
			c.waitFor(t, 2*len(done), 20*time.Second)
			stopA()
			<-aDone
			more := writeLoad(t, s, nil, 20)
			c.waitFor(t, 2*len(done)+2*len(more), 20*time.Second)
			for id, n := range more {
				done[id] = n
			}
			checkDelivered(t, c, done)
			if c.dups != 0 {
				t.Errorf("%d events published twice by two relays", c.dups)
			}
		})
	}
}

// TestOutboxUpgrade: a database from a version that kept published
// events (marked in a column sent) loses them at start, while the events
// still to publish stay; an upgraded table takes new events.
func TestOutboxUpgrade(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			params := storetest.Params(t, engine)
			db, err := store.Open(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			seq := "seq INTEGER PRIMARY KEY"
			if engine == "postgres" {
				seq = "seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
			}
			err = db.Write(ctx, func(tx *store.Tx) error {
				for _, stmt := range []string{
					`DROP TABLE _outbox`,
					`CREATE TABLE _outbox (` + seq + `, id TEXT NOT NULL, topic TEXT NOT NULL, msg_key TEXT NOT NULL,
						data TEXT NOT NULL, headers TEXT NOT NULL, created TEXT NOT NULL, sent TEXT)`,
					`CREATE INDEX _outbox_unsent ON _outbox (seq) WHERE sent IS NULL`,
					`CREATE INDEX _outbox_sent ON _outbox (sent) WHERE sent IS NOT NULL`,
					`INSERT INTO _outbox (id, topic, msg_key, data, headers, created, sent)
						VALUES ('ev-sent', 'records.notes', 'notes/a', '{}', '{}', '2026-01-01 00:00:00.000Z', '2026-01-01 00:00:01.000Z')`,
					`INSERT INTO _outbox (id, topic, msg_key, data, headers, created, sent)
						VALUES ('ev-pending', 'records.notes', 'notes/b', '{}', '{}', '2026-01-01 00:00:00.000Z', NULL)`,
				} {
					if _, err := tx.ExecContext(ctx, stmt); err != nil {
						return err
					}
				}
				return nil
			})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			if db, err = store.Open(ctx, params); err != nil {
				t.Fatalf("open the old database: %v", err)
			}
			defer db.Close()
			rows, err := db.PendingOutbox(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[0].ID != "ev-pending" {
				t.Fatalf("pending after the upgrade: %+v, want ev-pending alone", rows)
			}
			var n int
			if err := db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM _outbox`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("%d rows in the outbox (%v), want 1", n, err)
			}
			s := service(t, db, &outbox.Writer{})
			if _, err := s.Create(ctx, "notes", map[string]json.RawMessage{"title": raw(`"new"`)}, records.WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := db.OutboxSent(ctx, []int64{rows[0].Seq}, nil); err != nil {
				t.Fatal(err)
			}
			if n, _, _ := db.OutboxBacklog(ctx); n != 1 {
				t.Errorf("backlog %d, want 1: the new event", n)
			}
		})
	}
}

// TestRelayDispatch: the relay hands published events to Dispatch in the
// order they were written, and runs the write it returns in the
// transaction that deletes them: a failing Dispatch or write leaves the
// events to be published and dispatched again, and in the end each
// event's write has run exactly once.
func TestRelayDispatch(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, engine)
			if err := db.Write(ctx, func(tx *store.Tx) error {
				_, err := tx.ExecContext(ctx, `CREATE TABLE dispatched (id TEXT NOT NULL)`)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			var (
				mu    sync.Mutex
				calls int
				seen  [][]string // the event ids of each successful call
			)
			dispatch := func(ctx context.Context, events []broker.Message) (func(*store.Tx) error, error) {
				mu.Lock()
				defer mu.Unlock()
				calls++
				switch calls {
				case 1:
					return nil, fmt.Errorf("dispatch fails once")
				case 2:
					return func(*store.Tx) error { return fmt.Errorf("its write fails once") }, nil
				}
				ids := make([]string, len(events))
				for i, m := range events {
					ids[i] = m.ID
				}
				seen = append(seen, ids)
				return func(tx *store.Tx) error {
					for _, id := range ids {
						a := sqldb.Args{Dialect: tx.Dialect}
						if _, err := tx.ExecContext(ctx, `INSERT INTO dispatched (id) VALUES (`+a.Add(id)+`)`, a.Values...); err != nil {
							return err
						}
					}
					return nil
				}, nil
			}
			w := &outbox.Writer{}
			s := service(t, db, w)
			done := writeLoad(t, s, nil, 40) // written before the relay starts: one batch
			pending, err := db.PendingOutbox(ctx, 1000)
			if err != nil {
				t.Fatal(err)
			}
			seqOf := map[string]int64{}
			for _, row := range pending {
				seqOf[row.ID] = row.Seq
			}
			r := runRelay(t, outbox.RelayConfig{DB: db, Publisher: embedded(t), Poll: 20 * time.Millisecond,
				MaxBackoff: 50 * time.Millisecond, Dispatch: dispatch})
			w.Notify = r.Notify
			waitEmpty(t, db)

			rows, err := db.Reader().QueryContext(ctx, `SELECT id, COUNT(*) FROM dispatched GROUP BY id`)
			if err != nil {
				t.Fatal(err)
			}
			ran := map[string]int{}
			for rows.Next() {
				var id string
				var n int
				if err := rows.Scan(&id, &n); err != nil {
					t.Fatal(err)
				}
				ran[id] = n
			}
			rows.Close()
			for id := range seqOf {
				if ran[id] != 1 {
					t.Errorf("event %s: its write ran %d times, want 1", id, ran[id])
				}
			}
			total := 0
			for _, n := range done {
				total += n
			}
			if len(seqOf) != total || len(ran) != total {
				t.Errorf("%d events written, %d dispatched, want %d", len(seqOf), len(ran), total)
			}
			mu.Lock()
			defer mu.Unlock()
			if calls < 3 {
				t.Fatalf("Dispatch called %d times: the failures were not retried", calls)
			}
			for _, ids := range seen {
				for i := 1; i < len(ids); i++ {
					if seqOf[ids[i-1]] >= seqOf[ids[i]] {
						t.Fatalf("dispatched out of order: %v", ids)
					}
				}
			}
		})
	}
}
