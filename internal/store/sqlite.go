package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/strata-dev/strata/internal/sqldb"
)

// openSQLite opens one writer connection and a pool of read-only readers on
// the same file in WAL mode: readers never wait for the writer, and writes
// are serialized by the single connection instead of failing with
// SQLITE_BUSY.
func openSQLite(ctx context.Context, p Params) (*DB, error) {
	if p.Path == "" {
		return nil, errors.New("store: sqlite needs a database path")
	}
	if err := os.MkdirAll(filepath.Dir(p.Path), 0o750); err != nil {
		return nil, fmt.Errorf("store: create data directory: %w", err)
	}
	readers := p.Readers
	if readers <= 0 {
		readers = 4
	}
	dsn := func(extra ...string) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(1)")
		if p.MmapSize > 0 {
			q.Add("_pragma", "mmap_size("+strconv.FormatInt(p.MmapSize, 10)+")")
		}
		for i := 0; i+1 < len(extra); i += 2 {
			q.Add(extra[i], extra[i+1])
		}
		return "file:" + p.Path + "?" + q.Encode()
	}
	writer, err := openSQLiteDB(dsn("_txlock", "immediate"))
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	// The writer must exist first: it switches the file to WAL.
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", p.Path, err)
	}
	reader, err := openSQLiteDB(dsn("_pragma", "query_only(1)"))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("store: open sqlite readers: %w", err)
	}
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)
	reader.SetConnMaxIdleTime(0)
	reader.SetConnMaxLifetime(0)
	return &DB{dialect: sqldb.SQLite, writer: writer, reader: reader, batch: newBatcher(writer)}, nil
}

// openSQLiteDB returns a pool of SQLite connections on dsn, each with a
// cache of prepared statements (see stmtcache.go).
func openSQLiteDB(dsn string) (*sql.DB, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(stmtCacheConnector{Connector: c, size: stmtCacheSize}), nil
}

var sqliteUniqueRE = regexp.MustCompile(`UNIQUE constraint failed: [^.\s]+\.([A-Za-z0-9_]+)`)

func classifySQLite(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		ue := &UniqueError{Err: err}
		if m := sqliteUniqueRE.FindStringSubmatch(se.Error()); m != nil {
			ue.Field = m[1]
		}
		return ue
	}
	return err
}
