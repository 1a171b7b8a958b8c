package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"modernc.org/sqlite"

	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/sqldb"
)

// openCached opens a pool of n SQLite connections whose caches hold size
// statements each.
func openCached(t *testing.T, size, n int) *sql.DB {
	t.Helper()
	c, err := sqlite.NewConnector("file:" + filepath.Join(t.TempDir(), "c.db") + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(stmtCacheConnector{Connector: c, size: size})
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	t.Cleanup(func() { db.Close() })
	return db
}

// cacheOf runs f with the statement cache of a connection of conn.
func cacheOf(t *testing.T, conn *sql.Conn, f func(c *stmtCacheConn)) {
	t.Helper()
	if err := conn.Raw(func(dc any) error {
		c, ok := dc.(*stmtCacheConn)
		if !ok {
			return fmt.Errorf("connection is a %T", dc)
		}
		f(c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func cachedTexts(c *stmtCacheConn) []string {
	var out []string
	for s := c.lru.next; s != nil && s != &c.lru; s = s.next {
		out = append(out, s.query)
	}
	return out
}

func mustExec(t *testing.T, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, query string, args ...any) {
	t.Helper()
	if _, err := q.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func count(t *testing.T, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, query string, args ...any) int {
	t.Helper()
	var n int
	if err := q.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestStmtCacheReuse(t *testing.T) {
	ctx := context.Background()
	conn, err := openCached(t, 8, 1).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mustExec(t, conn, "CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER)")
	for i := range 10 {
		mustExec(t, conn, "INSERT INTO t (k, n) VALUES (?, ?)", fmt.Sprint("k", i), i)
	}
	for i := range 10 {
		if got := count(t, conn, "SELECT n FROM t WHERE k = ?", fmt.Sprint("k", i)); got != i {
			t.Fatalf("k%d: n = %d", i, got)
		}
	}
	cacheOf(t, conn, func(c *stmtCacheConn) {
		if c.misses != 2 || c.hits != 18 {
			t.Errorf("misses %d, hits %d; want 2, 18", c.misses, c.hits)
		}
		want := []string{"SELECT n FROM t WHERE k = ?", "INSERT INTO t (k, n) VALUES (?, ?)"}
		if got := cachedTexts(c); !slices.Equal(got, want) {
			t.Errorf("cached %q, want %q", got, want)
		}
	})
}

// TestStmtCacheBound checks that the cache keeps the most recently used
// statements up to its size.
func TestStmtCacheBound(t *testing.T) {
	ctx := context.Background()
	conn, err := openCached(t, 3, 1).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 10 {
		count(t, conn, fmt.Sprintf("SELECT %d", i))
	}
	count(t, conn, "SELECT 8") // most recent again
	cacheOf(t, conn, func(c *stmtCacheConn) {
		want := []string{"SELECT 8", "SELECT 9", "SELECT 7"}
		if got := cachedTexts(c); !slices.Equal(got, want) || len(c.stmts) != 3 {
			t.Errorf("cached %q (%d), want %q", got, len(c.stmts), want)
		}
	})
}

// TestStmtCacheSkips checks that transaction control (but group commit's
// savepoints), DDL, PRAGMA and statements with lists of parameters run
// uncached.
func TestStmtCacheSkips(t *testing.T) {
	db := openTestSQLite(t)
	ctx := context.Background()
	err := db.Write(ctx, func(tx *Tx) error {
		for _, q := range []string{"CREATE TABLE u (a INTEGER)", "CREATE INDEX u_a ON u (a)", "ALTER TABLE u ADD COLUMN b TEXT",
			"PRAGMA user_version = 3", "SAVEPOINT x", "RELEASE x", "DROP INDEX u_a", "DROP TABLE u"} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO t (k) VALUES (?), (?)", "a", "b"); err != nil {
			return err
		}
		var n int
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM t WHERE k IN (?, ?)`, "a", "b").Scan(&n)
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.writer.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cacheOf(t, conn, func(c *stmtCacheConn) {
		for q := range c.stmts {
			if opOf(q) == opOther && q != savepoint && q != release || strings.Contains(q, "IN (") {
				t.Errorf("cached %q", q)
			}
		}
		// Group commit's own savepoints around the write are kept.
		for _, q := range []string{"INSERT INTO t (k) VALUES (?), (?)", savepoint, release} {
			if c.stmts[q] == nil {
				t.Errorf("%q not cached: %q", q, cachedTexts(c))
			}
		}
	})
}

func TestStmtCacheCacheable(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT 1": true, " select 1": true, "WITH x AS (SELECT 1) SELECT * FROM x": true,
		"INSERT INTO t VALUES (?)": true, "UPDATE t SET a = ?": true, "DELETE FROM t": true,
		"SAVEPOINT w1": false, "RELEASE w1": false, "ROLLBACK TO w1": false, "BEGIN": false, "COMMIT": false,
		savepoint: true, release: true, rollbackTo: true,
		"CREATE TABLE x (a)": false, "ALTER TABLE x ADD b": false, "DROP TABLE x": false, "PRAGMA foreign_keys": false,
		"SELECT a FROM t WHERE a IN (?, ?)": false, "DELETE FROM t WHERE a in (?)": false,
		`DELETE FROM t WHERE "id" IN (SELECT r."id" FROM t r WHERE a = ?)`: true,
	} {
		if got := cacheable(q, 1); got != want {
			t.Errorf("cacheable(%q) = %v", q, got)
		}
	}
	if cacheable("INSERT INTO t VALUES (?)", stmtCacheMaxArgs+1) {
		t.Error("cached a statement with too many parameters")
	}
}

// TestStmtCacheSchemaChange caches statements on a table on the writer and
// a reader, then alters, drops and recreates the table: the statements
// follow the schema as their text would.
func TestStmtCacheSchemaChange(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Params{Engine: "sqlite", Path: filepath.Join(t.TempDir(), "d.db"), Readers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	write := func(qs ...string) error {
		return db.Write(ctx, func(tx *Tx) error {
			for _, q := range qs {
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// columns reads every row of s with SELECT * on the reader and in a
	// write, and returns the column names and the rows seen.
	columns := func() ([]string, [][]any, error) {
		var cols []string
		var out [][]any
		read := func(q Querier) error {
			rows, err := q.QueryContext(ctx, "SELECT * FROM s ORDER BY 1")
			if err != nil {
				return err
			}
			defer rows.Close()
			cols, _ = rows.Columns()
			out = out[:0]
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					return err
				}
				out = append(out, vals)
			}
			return rows.Err()
		}
		if err := read(db.Reader()); err != nil {
			return nil, nil, err
		}
		readerCols, readerRows := cols, slices.Clone(out)
		if err := db.Write(ctx, func(tx *Tx) error { return read(tx) }); err != nil {
			return nil, nil, err
		}
		if !slices.Equal(cols, readerCols) || fmt.Sprint(out) != fmt.Sprint(readerRows) {
			return nil, nil, fmt.Errorf("writer saw %q %v, reader %q %v", cols, out, readerCols, readerRows)
		}
		return cols, out, nil
	}
	if err := write("CREATE TABLE s (a INTEGER)", "INSERT INTO s (a) VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time from the caches
		if cols, rows, err := columns(); err != nil || !slices.Equal(cols, []string{"a"}) || len(rows) != 1 {
			t.Fatalf("before: %q %v %v", cols, rows, err)
		}
	}
	for _, pool := range []*sql.DB{db.reader, db.writer} {
		conn, err := pool.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cacheOf(t, conn, func(c *stmtCacheConn) {
			if c.stmts["SELECT * FROM s ORDER BY 1"] == nil || c.hits == 0 {
				t.Errorf("not served from the cache: %q, %d hits", cachedTexts(c), c.hits)
			}
		})
		conn.Close()
	}
	if err := write("ALTER TABLE s ADD COLUMN b TEXT DEFAULT 'x'"); err != nil {
		t.Fatal(err)
	}
	if cols, rows, err := columns(); err != nil || !slices.Equal(cols, []string{"a", "b"}) || fmt.Sprint(rows) != "[[1 x]]" {
		t.Fatalf("after alter: %q %v %v", cols, rows, err)
	}
	if err := write("DROP TABLE s"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := columns(); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Fatalf("after drop: %v", err)
	}
	if err := write("CREATE TABLE s (c TEXT, d INTEGER, e INTEGER)", "INSERT INTO s VALUES ('y', 2, 3)"); err != nil {
		t.Fatal(err)
	}
	if cols, rows, err := columns(); err != nil || !slices.Equal(cols, []string{"c", "d", "e"}) || fmt.Sprint(rows) != "[[y 2 3]]" {
		t.Fatalf("after recreate: %q %v %v", cols, rows, err)
	}
}

// TestStmtCacheNested runs a query inside the loop over the rows of the
// same query in one transaction, and lets the cache evict a statement
// whose rows are open.
func TestStmtCacheNested(t *testing.T) {
	ctx := context.Background()
	db := openCached(t, 2, 1)
	mustExec(t, db, "CREATE TABLE t (k INTEGER)")
	for i := range 5 {
		mustExec(t, db, "INSERT INTO t VALUES (?)", i)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const q = "SELECT k FROM t WHERE k >= ? ORDER BY k"
	var got []int
	var walk func(depth, from int) error
	walk = func(depth, from int) error {
		rows, err := tx.QueryContext(ctx, q, from)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k int
			if err := rows.Scan(&k); err != nil {
				return err
			}
			got = append(got, k)
			if depth < 2 {
				if err := walk(depth+1, k+3); err != nil {
					return err
				}
				// Push the outer statement out of the cache while its
				// rows are open.
				for i := range 3 {
					count(t, tx, fmt.Sprintf("SELECT %d", i))
				}
			}
		}
		return rows.Err()
	}
	if err := walk(0, 0); err != nil {
		t.Fatal(err)
	}
	// depth 0 walks 0..4, under each k depth 1 walks k+3..4, and so on.
	var want []int
	var ref func(depth, from int)
	ref = func(depth, from int) {
		for k := from; k < 5; k++ {
			want = append(want, k)
			if depth < 2 {
				ref(depth+1, k+3)
			}
		}
	}
	ref(0, 0)
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, "SELECT count(*) FROM t WHERE k >= ?", 0); n != 5 {
		t.Fatalf("count %d", n)
	}
}

// TestStmtCacheErrors checks that a cached statement that failed (bad
// arguments, a broken constraint, a cancelled context) works on the next
// call, and that errors keep their types.
func TestStmtCacheErrors(t *testing.T) {
	db := openTestSQLite(t)
	ctx := context.Background()
	ins := func(ctx context.Context, args ...any) error {
		return db.Write(ctx, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO t (k) VALUES (?)", args...)
			return db.classify(err)
		})
	}
	for range 2 {
		if err := ins(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		var ue *UniqueError
		if err := ins(ctx, "a"); !errors.As(err, &ue) {
			t.Fatalf("duplicate: %v", err)
		}
		if err := ins(ctx); err == nil {
			t.Fatal("no error for a missing argument")
		}
		if err := db.Write(ctx, func(tx *Tx) error { _, err := tx.ExecContext(ctx, "DELETE FROM t WHERE k = ?", "a"); return err }); err != nil {
			t.Fatal(err)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.Reader().QueryContext(cctx, "SELECT k FROM t WHERE k > ?", ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled query: %v", err)
	}
	// Rows closed by the end of their context free the statement.
	if err := ins(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		qctx, cancel := context.WithCancel(ctx)
		rows, err := db.Reader().QueryContext(qctx, "SELECT k FROM t WHERE k > ?", "")
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		for rows.Next() {
		}
		rows.Close()
	}
	if n := count(t, db.Reader(), "SELECT count(*) FROM t WHERE k > ?", ""); n != 1 {
		t.Fatalf("count %d", n)
	}
}

// TestStmtCacheConcurrent reads and writes from many goroutines through
// small caches, so statements are evicted while others run.
func TestStmtCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	db := openCached(t, 3, 4)
	mustExec(t, db, "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := g*1000 + i
				if _, err := db.ExecContext(ctx, "INSERT INTO t (k, v) VALUES (?, ?)", k, fmt.Sprint(k)); err != nil {
					errs <- err
					return
				}
				var v string
				q := fmt.Sprintf("SELECT v FROM t WHERE k = ? AND %d = %d", i%5, i%5)
				if err := db.QueryRowContext(ctx, q, k).Scan(&v); err != nil || v != fmt.Sprint(k) {
					errs <- fmt.Errorf("%s %d: %q %v", q, k, v, err)
					return
				}
				rows, err := db.QueryContext(ctx, "SELECT k FROM t WHERE k >= ? AND k < ? ORDER BY k", g*1000, k+1)
				if err != nil {
					errs <- err
					return
				}
				n := 0
				for rows.Next() {
					n++
				}
				rows.Close()
				if n != i+1 {
					errs <- fmt.Errorf("goroutine %d saw %d rows, want %d", g, n, i+1)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestStmtCacheDriverConn checks that the wrapped connection keeps the
// driver interfaces database/sql looks for.
func TestStmtCacheDriverConn(t *testing.T) {
	var c driver.Conn = &stmtCacheConn{}
	for name, ok := range map[string]bool{
		"ExecerContext":      is[driver.ExecerContext](c),
		"QueryerContext":     is[driver.QueryerContext](c),
		"ConnBeginTx":        is[driver.ConnBeginTx](c),
		"ConnPrepareContext": is[driver.ConnPrepareContext](c),
		"Pinger":             is[driver.Pinger](c),
		"SessionResetter":    is[driver.SessionResetter](c),
		"Validator":          is[driver.Validator](c),
		"NamedValueChecker":  !is[driver.NamedValueChecker](c),
	} {
		if !ok {
			t.Errorf("%s", name)
		}
	}
}

func is[T any](v any) bool { _, ok := v.(T); return ok }

// TestExistOneIDCached: checking a single relation, the usual case, runs
// a statement whose text does not vary, which the cache serves; a list of
// ids still works, uncached.
func TestExistOneIDCached(t *testing.T) {
	ctx := context.Background()
	conn, err := openCached(t, 8, 1).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mustExec(t, conn, `CREATE TABLE "users" ("id" TEXT PRIMARY KEY)`)
	mustExec(t, conn, `INSERT INTO "users" ("id") VALUES ('a'), ('b')`)
	users := &schema.Collection{Name: "users"}
	for _, id := range []string{"a", "b", "c"} {
		found, err := Exist(ctx, conn, sqldb.SQLite, users, []string{id})
		if err != nil {
			t.Fatal(err)
		}
		if found[id] != (id != "c") {
			t.Errorf("Exist(%s) = %v", id, found)
		}
	}
	found, err := Exist(ctx, conn, sqldb.SQLite, users, []string{"a", "c", "b"})
	if err != nil || !found["a"] || !found["b"] || found["c"] {
		t.Errorf("Exist(a, c, b) = %v, %v", found, err)
	}
	cacheOf(t, conn, func(c *stmtCacheConn) {
		if c.hits != 2 {
			t.Errorf("%d hits for three checks of one id, want 2; cached %q", c.hits, cachedTexts(c))
		}
	})
}
