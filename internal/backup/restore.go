package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RestoreOptions says what to restore and where.
type RestoreOptions struct {
	// Archive is the path of the backup archive.
	Archive string
	// Engine is the configured engine, "sqlite" or "postgres"; it must be
	// the archive's.
	Engine string
	// PostgresURL is the database to load a PostgreSQL backup into; it
	// must hold no Strata tables.
	PostgresURL string
	// Layout is where the files go; its directories must be empty or
	// missing.
	Layout Layout
	// Environ is the environment of pg_restore, as os.Environ returns.
	Environ []string
	// Progress is told how the work goes; nil reports nothing.
	Progress Progress
}

// Restore restores the archive at o.Archive. It checks that the targets
// are empty, reads the whole archive once to check it against its
// manifest, then again to write it: the files go under temporary names
// beside their targets, a PostgreSQL dump is loaded in one transaction,
// and only then are the files renamed into place. On failure nothing of
// the restore is left behind.
func Restore(ctx context.Context, o RestoreOptions) (*Result, error) {
	start := time.Now()
	if o.Progress == nil {
		o.Progress = Discard
	}
	if err := checkEmpty(o.Layout, o.Engine); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	f, err := os.Open(o.Archive)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	m, err := Verify(ctx, f, o.Progress, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("restore: %s: %w", o.Archive, err)
	}
	if m.Engine != o.Engine {
		return nil, fmt.Errorf("restore: %s holds a %s backup, but the configuration uses %s (--db)", o.Archive, m.Engine, o.Engine)
	}
	if o.Engine == "postgres" {
		if err := checkEmptyPostgres(ctx, o.PostgresURL); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	s, m2, err := extract(ctx, f, o.Layout, o.Progress, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("restore: %s: %w", o.Archive, err)
	}
	ok := false
	defer func() {
		if !ok {
			s.abort()
		}
	}()
	if m2.Engine != m.Engine || m2.Created != m.Created {
		return nil, fmt.Errorf("restore: %s changed while it was read", o.Archive)
	}
	if o.Engine == "postgres" {
		if err := restorePostgres(ctx, o.PostgresURL, s.path(dumpName), m.Postgres, o.Environ, o.Progress); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
		if err := s.discard(dumpName); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	if err := s.commit(); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	ok = true
	return &Result{Manifest: m, Size: fi.Size(), Duration: time.Since(start)}, nil
}

// ErrNotEmpty is returned by Restore when a target is in use.
var ErrNotEmpty = errors.New("not empty")

// checkEmpty fails unless the layout's directories are missing or empty
// and the SQLite database file does not exist.
func checkEmpty(l Layout, engine string) error {
	if err := emptyDir("data directory", l.Dir); err != nil {
		return err
	}
	if filepath.Clean(l.MigrationsDir) != filepath.Join(l.Dir, migrDir) {
		if err := emptyDir("migrations directory", l.MigrationsDir); err != nil {
			return err
		}
	}
	if engine == "sqlite" {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			p := l.DBPath + suffix
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("the database file %s exists: %w; restore needs a fresh one", p, ErrNotEmpty)
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// emptyDir fails when dir exists and holds anything, naming what.
func emptyDir(what, dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("the %s %s is not a directory", what, dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	if len(ents) == 0 {
		return nil
	}
	var names []string
	for i, e := range ents {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(ents)-5))
			break
		}
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	return fmt.Errorf("the %s %s is %w (it holds %s): restore into an empty or missing directory", what, dir, ErrNotEmpty, strings.Join(names, ", "))
}
