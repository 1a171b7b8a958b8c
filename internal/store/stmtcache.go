package store

import (
	"context"
	"database/sql/driver"
	"reflect"
	"strings"
)

// Prepared statements for SQLite. database/sql hands every ExecContext and
// QueryContext to the driver as text, and modernc.org/sqlite then parses,
// plans, runs and finalizes the statement on each call: for the short
// statements an API runs, parsing and planning cost more than running. The
// store builds its SQL from the schema, so the same few hundred texts come
// back all the time.
//
// Each SQLite connection (the writer, and every reader) is wrapped to keep
// its own LRU of prepared statements keyed by the statement's text. The
// cache lives below database/sql, on the driver connection, because there:
//
//   - database/sql never uses a driver connection from two goroutines at a
//     time (every call, Rows.Next and Rows.Close included, holds the
//     connection's lock), so the cache needs no lock and a statement is
//     never closed while another goroutine runs it;
//   - it serves transactions without a Tx-bound *sql.Stmt per call, and
//     needs no change to the Querier or Tx, nor to the timing and tracing
//     in observe.go, which wrap the calls above database/sql as before;
//   - it knows when a query's rows are closed, so a statement whose rows
//     are still open (a query run inside the loop over the rows of the same
//     query, in one transaction) is never reset under them: that call gets
//     a statement of its own, prepared and finalized as without the cache.
//
// What is cached: statements that begin with SELECT, WITH, INSERT, UPDATE or
// DELETE, and the three savepoint statements group commit runs around
// every write (batch.go). Other transaction control (BEGIN, COMMIT, other
// savepoints), DDL (CREATE, ALTER, DROP) and PRAGMA run uncached. Statements
// with a list of bind parameters (IN (?, ?, ...)) vary in length with the
// list and would only churn the cache, so they are not cached either, nor
// are statements with more than stmtCacheMaxArgs parameters.
//
// A cached statement stays valid across schema changes: the driver prepares
// with sqlite3_prepare_v2, so SQLite prepares the statement again from its
// text when the schema it was planned on has changed, and a statement on a
// dropped table fails as the same text would, then works again once the
// table is back. A cached statement is reset after every use, so it holds no
// read transaction open and no lock.

const (
	// stmtCacheSize bounds the statements kept per connection.
	stmtCacheSize = 256
	// stmtCacheMaxArgs: statements with more bind parameters run uncached.
	stmtCacheMaxArgs = 128
)

// cacheable reports whether a statement may be cached.
func cacheable(query string, nargs int) bool {
	switch opOf(query) {
	case opSelect, opInsert, opUpdate, opDelete:
	default:
		return query == savepoint || query == rollbackTo || query == release
	}
	return nargs <= stmtCacheMaxArgs && !strings.Contains(query, "IN (?") && !strings.Contains(query, "in (?")
}

// sqliteDriverConn is what the cache needs of a driver connection; modernc's
// connections implement all of it.
type sqliteDriverConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// sqliteDriverStmt is what the cache needs of a driver statement.
type sqliteDriverStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// stmtCacheConnector opens connections with a statement cache each.
type stmtCacheConnector struct {
	driver.Connector
	size int
}

func (c stmtCacheConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := dc.(sqliteDriverConn)
	if !ok { // not a driver the cache knows: run it as it is
		return dc, nil
	}
	return &stmtCacheConn{sqliteDriverConn: sc, size: c.size, stmts: make(map[string]*cachedStmt)}, nil
}

// stmtCacheConn is a driver connection with a cache of prepared statements.
// Like the connection it wraps, it is used by one goroutine at a time.
type stmtCacheConn struct {
	sqliteDriverConn
	size  int
	stmts map[string]*cachedStmt
	lru   cachedStmt // sentinel of the list, most recently used first
	// hits and misses count lookups of cacheable statements (for tests).
	hits, misses int
}

// cachedStmt is a prepared statement in a connection's cache.
type cachedStmt struct {
	query      string
	stmt       sqliteDriverStmt
	prev, next *cachedStmt
	// busy: rows of a query on the statement are open; it must not run
	// again, nor be closed, until they are closed.
	busy bool
	// evicted: no longer in the cache; closed when its rows are.
	evicted bool
}

func (c *stmtCacheConn) unlink(s *cachedStmt) {
	s.prev.next, s.next.prev = s.next, s.prev
	s.prev, s.next = nil, nil
}

func (c *stmtCacheConn) pushFront(s *cachedStmt) {
	if c.lru.next == nil {
		c.lru.next, c.lru.prev = &c.lru, &c.lru
	}
	s.prev, s.next = &c.lru, c.lru.next
	c.lru.next.prev = s
	c.lru.next = s
}

// lookup returns the cached statement for query, preparing and caching it
// on a miss. It returns nil, nil when the call is to run uncached: the
// statement is not cacheable, or its rows are open.
func (c *stmtCacheConn) lookup(ctx context.Context, query string, nargs int) (*cachedStmt, error) {
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil, nil
		}
		c.hits++
		if c.lru.next != s {
			c.unlink(s)
			c.pushFront(s)
		}
		return s, nil
	}
	if !cacheable(query, nargs) {
		return nil, nil
	}
	c.misses++
	ds, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	st, ok := ds.(sqliteDriverStmt)
	if !ok {
		ds.Close()
		return nil, nil
	}
	s := &cachedStmt{query: query, stmt: st}
	c.stmts[query] = s
	c.pushFront(s)
	if len(c.stmts) > c.size {
		old := c.lru.prev
		c.unlink(old)
		delete(c.stmts, old.query)
		if old.busy {
			old.evicted = true
		} else {
			old.stmt.Close()
		}
	}
	return s, nil
}

func (c *stmtCacheConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.lookup(ctx, query, len(args))
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.sqliteDriverConn.ExecContext(ctx, query, args)
	}
	return s.stmt.ExecContext(ctx, args)
}

func (c *stmtCacheConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.lookup(ctx, query, len(args))
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.sqliteDriverConn.QueryContext(ctx, query, args)
	}
	rows, err := s.stmt.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	s.busy = true
	return &cachedRows{Rows: rows, s: s}, nil
}

// Close closes the cached statements, then the connection. database/sql
// closes a connection only once its rows are closed; a statement whose
// rows are open anyway is left to them.
func (c *stmtCacheConn) Close() error {
	for _, s := range c.stmts {
		if s.busy {
			s.evicted = true
		} else {
			s.stmt.Close()
		}
	}
	clear(c.stmts)
	c.lru.next, c.lru.prev = nil, nil
	return c.sqliteDriverConn.Close()
}

// cachedRows are the rows of a query on a cached statement: closing them
// resets the statement (the driver does) and frees it for the next call.
type cachedRows struct {
	driver.Rows
	s *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	if s := r.s; s != nil {
		r.s = nil
		s.busy = false
		if s.evicted {
			s.stmt.Close()
		}
	}
	return err
}

// The optional column type interfaces of the driver's rows, passed through.

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
