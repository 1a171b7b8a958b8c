package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// snapshotSQLite writes a consistent copy of the SQLite database at src to
// dst, which must not exist, with VACUUM INTO. The copy is made in one read
// transaction on a connection of its own: in WAL mode it sees the database
// as of one commit and never blocks the writers of a server running on the
// same file. The connection writes nothing to src (SQLite's read-only
// modes refuse VACUUM INTO); when it is the last one to close, SQLite folds
// the WAL into the file as on any clean close. p is told the size of dst
// as it grows, against an estimate of the final size.
func snapshotSQLite(ctx context.Context, src, dst string, p Progress) error {
	fi, err := os.Stat(src)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no SQLite database at %s: check --dir and --db", src)
	}
	if err != nil {
		return fmt.Errorf("sqlite snapshot: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("sqlite snapshot: %s is not a file", src)
	}
	q := url.Values{}
	q.Set("mode", "rw") // never create a database that is not there
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", "file:"+src+"?"+q.Encode())
	if err != nil {
		return fmt.Errorf("sqlite snapshot: open %s: %w", src, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	var pages, free, pageSize int64
	for _, pr := range []struct {
		name string
		v    *int64
	}{{"page_count", &pages}, {"freelist_count", &free}, {"page_size", &pageSize}} {
		if err := db.QueryRowContext(ctx, "PRAGMA "+pr.name).Scan(pr.v); err != nil {
			return fmt.Errorf("sqlite snapshot: read %s of %s: %w", pr.name, src, err)
		}
	}
	p.Start("backup: snapshot", max(pages-free, 1)*pageSize)
	defer p.Done()
	stop := watchSize(dst, p)
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", dst)
	stop()
	if err != nil {
		return fmt.Errorf("sqlite snapshot: vacuum %s into %s: %w", src, dst, err)
	}
	return checkSQLite(ctx, dst)
}

// checkSQLite runs SQLite's quick check on the snapshot, so that an archive
// never holds a database that cannot be opened.
func checkSQLite(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return fmt.Errorf("check snapshot: %w", err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil {
		return fmt.Errorf("check snapshot: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("check snapshot: quick_check reports %q", res)
	}
	return nil
}

// watchSize tells p the size of the file at path every 200ms until the
// returned function is called.
func watchSize(path string, p Progress) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if fi, err := os.Stat(path); err == nil {
					p.Set(fi.Size())
				}
			}
		}
	}()
	return func() {
		close(done)
		<-exited
		if fi, err := os.Stat(path); err == nil {
			p.Set(fi.Size())
		}
	}
}
