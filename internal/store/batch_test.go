package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func openTestSQLite(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), Params{Engine: "sqlite", Path: filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Write(context.Background(), func(tx *Tx) error {
		_, err := tx.ExecContext(context.Background(), "CREATE TABLE t (k TEXT PRIMARY KEY)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return db
}

func keys(t *testing.T, db *DB) map[string]bool {
	t.Helper()
	rows, err := db.Reader().QueryContext(context.Background(), "SELECT k FROM t")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		rows.Scan(&k)
		out[k] = true
	}
	return out
}

// TestGroupCommit holds the writer busy, queues writes that succeed, fail,
// panic or are cancelled, and checks that they shared one commit and that
// each got its own outcome.
func TestGroupCommit(t *testing.T) {
	db := openTestSQLite(t)
	var sizes []int
	var mu sync.Mutex
	db.batch.observe = func(n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }
	ctx := context.Background()

	release := make(chan struct{})
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		db.Write(ctx, func(tx *Tx) error {
			close(started)
			<-release
			_, err := tx.ExecContext(ctx, "INSERT INTO t VALUES ('blocker')")
			return err
		})
	}()
	<-started

	insert := func(k string) func(*Tx) error {
		return func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (?)", k)
			return err
		}
	}
	errBoom := errors.New("boom")
	cancelled, cancel := context.WithCancel(ctx)
	type job struct {
		name string
		ctx  context.Context
		fn   func(*Tx) error
		want func(error) bool
	}
	jobs := []job{
		{"ok1", ctx, insert("ok1"), func(err error) bool { return err == nil }},
		{"fails after writing", ctx, func(tx *Tx) error {
			insert("undone")(tx)
			return errBoom
		}, func(err error) bool { return errors.Is(err, errBoom) }},
		{"duplicate", ctx, func(tx *Tx) error {
			insert("dup")(tx)
			_, err := tx.ExecContext(ctx, "INSERT INTO t VALUES ('dup')")
			return err
		}, func(err error) bool { return err != nil }},
		{"panics", ctx, func(tx *Tx) error {
			insert("panicked")(tx)
			panic("bad write")
		}, func(err error) bool { return err != nil }},
		{"cancelled", cancelled, insert("cancelled"), func(err error) bool { return errors.Is(err, context.Canceled) }},
		{"ok2", ctx, insert("ok2"), func(err error) bool { return err == nil }},
	}
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Write(j.ctx, j.fn)
		}()
	}
	// Wait until every job is queued behind the blocker.
	for deadline := time.Now().Add(5 * time.Second); len(db.batch.queue) < len(jobs); {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes queued", len(db.batch.queue))
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	close(release)
	wg.Wait()

	for i, j := range jobs {
		if !j.want(errs[i]) {
			t.Errorf("%s: err = %v", j.name, errs[i])
		}
	}
	got := keys(t, db)
	want := map[string]bool{"blocker": true, "ok1": true, "ok2": true}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) < 2 || sizes[len(sizes)-1] != len(jobs) {
		t.Errorf("batch sizes %v: the queued writes did not share one commit", sizes)
	}
}

// TestCloseWithPendingWrites closes the database while writes are queued:
// every write gets an answer and none hangs.
func TestCloseWithPendingWrites(t *testing.T) {
	db := openTestSQLite(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := db.Write(ctx, func(tx *Tx) error {
				_, err := tx.ExecContext(ctx, "INSERT INTO t VALUES (?)", fmt.Sprint(i))
				return err
			})
			if err != nil && !errors.Is(err, errClosed) {
				t.Errorf("write %d: %v", i, err)
			}
		}()
	}
	time.Sleep(time.Millisecond)
	done := make(chan struct{})
	go func() { db.batch.close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("close did not return")
	}
	wg.Wait()
	if err := db.Write(ctx, func(*Tx) error { return nil }); !errors.Is(err, errClosed) {
		t.Errorf("write after close: %v", err)
	}
}
