package store_test

import (
	"context"
	"database/sql"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

// openReplicated opens a fresh schema on the test primary with the test
// replica (reached through replicaURL, the replica's own URL when "") as its
// read replica.
func openReplicated(t *testing.T, replicaURL string, maxLag time.Duration) (*store.DB, *prometheus.Registry) {
	t.Helper()
	if replicaURL == "" {
		replicaURL = storetest.Replica(t)
	}
	p := storetest.Params(t, "postgres")
	p.Replicas = []string{replicaURL}
	p.ReplicaMaxLag = maxLag
	reg := prometheus.NewRegistry()
	p.Metrics = reg
	db, err := store.Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, reg
}

// exec runs stmt on the primary with ctx's session and returns the session.
func exec(t *testing.T, ctx context.Context, db *store.DB, stmt string) context.Context {
	t.Helper()
	ctx = store.WithSession(ctx)
	if err := db.Write(ctx, func(tx *store.Tx) error {
		_, err := tx.ExecContext(ctx, stmt)
		return err
	}); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
	return ctx
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitReplayed waits until the replica has replayed up to what ctx's
// session wrote and is in rotation.
func waitReplayed(t *testing.T, db *store.DB, ctx context.Context) {
	t.Helper()
	want := store.LastLSN(ctx)
	waitFor(t, 10*time.Second, "replica has not replayed "+want.String(), func() bool {
		st := db.Replicas()[0]
		l, err := store.ParseLSN(st.ReplayLSN)
		return err == nil && l >= want && st.InRotation
	})
}

// onReplica reports whether a read through the reader with ctx ran on a
// replica.
func onReplica(t *testing.T, ctx context.Context, db *store.DB) bool {
	t.Helper()
	var recovery bool
	if err := db.Reader().QueryRowContext(ctx, `SELECT pg_is_in_recovery()`).Scan(&recovery); err != nil {
		t.Fatal(err)
	}
	return recovery
}

func readsTo(t *testing.T, reg *prometheus.Registry, target string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "strata_db_reads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == target {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// pauseReplay stops the replica replaying WAL until the test ends or the
// returned function is called.
func pauseReplay(t *testing.T) (resume func()) {
	t.Helper()
	admin, err := sql.Open("pgx", storetest.Replica(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			if _, err := admin.Exec(`SELECT pg_wal_replay_resume()`); err != nil {
				t.Errorf("resume replay: %v", err)
			}
			admin.Close()
		})
	}
	t.Cleanup(resume)
	return resume
}

// TestReplicaServesReads: reads go to the replica, in the test's schema
// (the replica connections take the primary URL's search_path); writes and
// reads inside a write go to the primary.
func TestReplicaServesReads(t *testing.T) {
	db, reg := openReplicated(t, "", 0)
	ctx := exec(t, context.Background(), db, `CREATE TABLE items (id int PRIMARY KEY, name text)`)
	exec(t, ctx, db, `INSERT INTO items VALUES (1, 'one')`)
	waitReplayed(t, db, ctx)

	bg := context.Background()
	if !onReplica(t, bg, db) {
		t.Fatal("a read without a session ran on the primary")
	}
	var name string
	if err := db.Reader().QueryRowContext(bg, `SELECT name FROM items WHERE id = 1`).Scan(&name); err != nil || name != "one" {
		t.Fatalf("read on the replica = %q, %v", name, err)
	}
	rows, err := db.Reader().QueryContext(bg, `SELECT id FROM items`)
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if err := db.Write(bg, func(tx *store.Tx) error {
		var recovery bool
		if err := tx.QueryRowContext(bg, `SELECT pg_is_in_recovery()`).Scan(&recovery); err != nil {
			return err
		}
		if recovery {
			t.Error("a read inside a write ran on the replica")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := readsTo(t, reg, "replica"); got != 3 {
		t.Errorf("reads on replicas = %v, want 3", got)
	}
	if got := gauge(t, reg, "strata_db_replica_in_rotation"); got != 1 {
		t.Errorf("strata_db_replica_in_rotation = %v", got)
	}
	if err := db.ReplicaHealth(bg); err != nil {
		t.Errorf("ReplicaHealth = %v", err)
	}
	if st := db.Replicas(); len(st) != 1 || !st[0].InRotation || st[0].Reason != "" {
		t.Errorf("Replicas() = %+v", st)
	}
}

// TestReadYourWrites: with the replica paused, a read that carries the
// write's LSN (in its session, or through a consistency token in a later
// request) goes to the primary and sees the write; a read without it goes
// to the replica, which does not have it yet.
func TestReadYourWrites(t *testing.T) {
	db, reg := openReplicated(t, "", time.Minute)
	setup := exec(t, context.Background(), db, `CREATE TABLE items (id int PRIMARY KEY)`)
	waitReplayed(t, db, setup)
	resume := pauseReplay(t)

	ctx := exec(t, context.Background(), db, `INSERT INTO items VALUES (7)`)
	if store.LastLSN(ctx) <= store.LastLSN(setup) || !store.Wrote(ctx) {
		t.Fatalf("LastLSN after the insert = %s, before %s", store.LastLSN(ctx), store.LastLSN(setup))
	}
	count := func(ctx context.Context) int {
		var n int
		if err := db.Reader().QueryRowContext(ctx, `SELECT COUNT(*) FROM items`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(ctx); n != 1 {
		t.Errorf("the writer's own read sees %d rows, want 1", n)
	}
	token := store.ConsistencyToken(ctx)
	later := store.WithConsistencyToken(context.Background(), token)
	if n := count(later); n != 1 || onReplica(t, later, db) {
		t.Errorf("a read with token %q sees %d rows (want 1) or ran on the replica", token, n)
	}
	if n := count(context.Background()); n != 0 {
		t.Errorf("a read without a session sees %d rows on the paused replica, want 0", n)
	}
	if p, r := readsTo(t, reg, "primary"), readsTo(t, reg, "replica"); p != 3 || r != 1 {
		t.Errorf("reads: %v on the primary (want 3), %v on the replica (want 1)", p, r)
	}

	resume()
	waitReplayed(t, db, ctx)
	if n := count(later); n != 1 || !onReplica(t, later, db) {
		t.Errorf("once replayed, a read with the token sees %d rows or did not run on the replica", n)
	}
}

// TestReplicaLagRotation: a replica that falls further behind than
// replica_max_lag leaves the rotation, and comes back when it catches up.
func TestReplicaLagRotation(t *testing.T) {
	db, reg := openReplicated(t, "", 300*time.Millisecond)
	setup := exec(t, context.Background(), db, `CREATE TABLE items (id int PRIMARY KEY)`)
	waitReplayed(t, db, setup)
	resume := pauseReplay(t)
	exec(t, context.Background(), db, `INSERT INTO items VALUES (1)`)

	start := time.Now()
	waitFor(t, 5*time.Second, "the paused replica stays in rotation", func() bool { return !db.Replicas()[0].InRotation })
	st := db.Replicas()[0]
	t.Logf("out of rotation after %s: %+v", time.Since(start).Round(time.Millisecond), st)
	if st.LagSeconds <= 0.3 || st.LagBytes <= 0 || !strings.Contains(st.Reason, "lagging") {
		t.Errorf("state = %+v, want a lag over 0.3s", st)
	}
	if onReplica(t, context.Background(), db) {
		t.Error("a read ran on a replica out of rotation")
	}
	if got := gauge(t, reg, "strata_db_replica_in_rotation"); got != 0 {
		t.Errorf("strata_db_replica_in_rotation = %v", got)
	}
	if got := gauge(t, reg, "strata_db_replica_lag_seconds"); got <= 0.3 {
		t.Errorf("strata_db_replica_lag_seconds = %v", got)
	}
	if err := db.ReplicaHealth(context.Background()); err != nil {
		t.Errorf("ReplicaHealth with the primary up = %v, want nil", err)
	}

	resume()
	start = time.Now()
	waitFor(t, 5*time.Second, "the resumed replica does not come back", func() bool { return db.Replicas()[0].InRotation })
	t.Logf("back in rotation %s after resume: %+v", time.Since(start).Round(time.Millisecond), db.Replicas()[0])
	if !onReplica(t, context.Background(), db) {
		t.Error("a read did not go to the replica back in rotation")
	}
}

// proxy forwards TCP connections to addr until stopped, which closes the
// listener and every connection: to a client, the server died.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, addr string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(up, c); up.Close() })
			p.wg.Go(func() { io.Copy(c, up); c.Close() })
		}
	})
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestReplicaDown: when the replica goes away, reads go on at the primary
// without an error, even those that reach the replica before the poller
// notices; the primary up, the node stays ready.
func TestReplicaDown(t *testing.T) {
	u, err := url.Parse(storetest.Replica(t))
	if err != nil {
		t.Fatal(err)
	}
	px := startProxy(t, u.Host)
	u.Host = px.ln.Addr().String()
	db, reg := openReplicated(t, u.String(), 0)
	setup := exec(t, context.Background(), db, `CREATE TABLE items (id int PRIMARY KEY)`)
	exec(t, setup, db, `INSERT INTO items VALUES (1)`)
	waitReplayed(t, db, setup)
	// Open several connections to the replica, then cut them all.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { onReplica(t, context.Background(), db) })
	}
	wg.Wait()
	px.stop()

	for i := range 50 {
		if i == 1 {
			t.Logf("after the first read: %+v", db.Replicas()[0])
		}
		var n int
		if err := db.Reader().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM items`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("read %d with the replica down: %d rows, %v", i, n, err)
		}
		rows, err := db.Reader().QueryContext(context.Background(), `SELECT id FROM items`)
		if err != nil {
			t.Fatalf("query %d with the replica down: %v", i, err)
		}
		rows.Close()
		time.Sleep(5 * time.Millisecond)
	}
	st := db.Replicas()[0]
	if st.InRotation || st.Reason == "" {
		t.Errorf("state of the stopped replica = %+v", st)
	}
	t.Logf("stopped replica: %+v; reads on the primary %v, on the replica %v", st, readsTo(t, reg, "primary"), readsTo(t, reg, "replica"))
	if err := db.ReplicaHealth(context.Background()); err != nil {
		t.Errorf("ReplicaHealth with the primary up = %v, want nil", err)
	}
}

// TestReplicaNotInRecovery: a "replica" URL that names a primary is never
// read from.
func TestReplicaNotInRecovery(t *testing.T) {
	storetest.Replica(t)
	db, _ := openReplicated(t, storetest.Schema(t), 0)
	if onReplica(t, context.Background(), db) {
		t.Fatal("impossible: the primary is in recovery")
	}
	st := db.Replicas()[0]
	if st.InRotation || !strings.Contains(st.Reason, "not in recovery") {
		t.Errorf("state = %+v", st)
	}
}

// TestReplicaHealthPrimaryDown: with the primary closed, ReplicaHealth
// fails and shows only counts to anonymous callers.
func TestReplicaHealthPrimaryDown(t *testing.T) {
	db, _ := openReplicated(t, "", 0)
	db.Close()
	err := db.ReplicaHealth(context.Background())
	if err == nil || !strings.Contains(err.Error(), "primary does not answer; ") {
		t.Fatalf("ReplicaHealth with the primary closed = %v", err)
	}
}

func TestReplicasNeedPostgres(t *testing.T) {
	p := storetest.Params(t, "sqlite")
	p.Replicas = []string{"postgres://127.0.0.1:1/x"}
	if _, err := store.Open(context.Background(), p); err == nil || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("Open(sqlite with replicas) = %v", err)
	}
}

func TestLSN(t *testing.T) {
	tests := []struct {
		in   string
		want store.LSN
		ok   bool
	}{
		{"0/0", 0, true},
		{"16/B374D848", 0x16_B374D848, true},
		{"FFFFFFFF/FFFFFFFF", ^store.LSN(0), true},
		{"16/b374d848", 0x16_B374D848, true},
		{"", 0, false},
		{"16", 0, false},
		{"/1", 0, false},
		{"1/", 0, false},
		{"1/123456789", 0, false},
		{"x/1", 0, false},
		{"-1/1", 0, false},
	}
	for _, tt := range tests {
		got, err := store.ParseLSN(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseLSN(%q) = %v, %v", tt.in, got, err)
		}
		if tt.ok && !strings.EqualFold(got.String(), tt.in) {
			t.Errorf("LSN(%q).String() = %q", tt.in, got.String())
		}
	}
}

func FuzzParseLSN(f *testing.F) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "1/", "+1/-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := store.ParseLSN(s)
		if err != nil {
			return
		}
		back, err := store.ParseLSN(l.String())
		if err != nil || back != l {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, l, l.String(), back, err)
		}
	})
}

func TestConsistencyToken(t *testing.T) {
	ctx := context.Background()
	if store.ConsistencyToken(ctx) != "" || store.LastLSN(ctx) != 0 || store.Wrote(ctx) {
		t.Fatal("a context without a session has a token")
	}
	ctx = store.WithMinLSN(ctx, 0x10_00000020)
	ctx = store.WithMinLSN(ctx, 0x10_00000010) // never lowers
	if got := store.ConsistencyToken(ctx); got != "10/20" {
		t.Errorf("token = %q", got)
	}
	for _, bad := range []string{"", "garbage", "1/2/3"} {
		c := store.WithConsistencyToken(context.Background(), bad)
		if store.LastLSN(c) != 0 {
			t.Errorf("token %q gives LSN %s", bad, store.LastLSN(c))
		}
	}
	if got := store.LastLSN(store.WithConsistencyToken(context.Background(), " 10/20 ")); got != 0x10_00000020 {
		t.Errorf("token with spaces = %s", got)
	}
}
