package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"golang.org/x/term"

	"github.com/strata-dev/strata/internal/backup"
	"github.com/strata-dev/strata/internal/config"
)

const backupUsage = `backup PATH [--force] [flags]

Writes a consistent backup of the data to PATH, a .tar.gz archive, while a
server may keep serving and writing: the database (SQLite: a snapshot taken
with VACUUM INTO; PostgreSQL: pg_dump in its custom format), the signing keys
and secret of the data directory, and the migration files, with a manifest of
sizes and SHA-256 sums. PATH "-" writes the archive to standard output.

The archive is written beside PATH under a temporary name and renamed when
complete. PostgreSQL backups need pg_dump of the server's major version or
newer on PATH. Restore with: strata restore PATH`

const restoreUsage = `restore PATH [flags]

Restores the backup archive at PATH into an empty or missing data directory
(--dir) with the same flags, environment and config file as the server. Every
file is checked against the archive's manifest before anything is written; a
failed restore leaves nothing behind. A PostgreSQL backup is loaded with
pg_restore, in one transaction, into the database of --db, which must hold no
Strata tables.`

func backupCmd(ctx context.Context, args []string, e env) error {
	fs := flags(e, "backup", backupUsage)
	force := fs.Bool("force", false, "overwrite PATH if it exists")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return usagef("backup needs one PATH to write the archive to (\"-\" for standard output)")
	}
	cfg, err := config.Load(fs, e.environ)
	if err != nil {
		return err
	}
	o := backup.Options{
		Engine: cfg.Engine(), DBPath: cfg.SQLitePath(), PostgresURL: cfg.DB,
		Dir: cfg.Dir, MigrationsDir: cfg.MigrationsPath(),
		StrataVersion: strataVersion(), Environ: e.environ, Progress: progress(e),
	}
	path := pos[0]
	var res *backup.Result
	summary := e.stdout
	if path == "-" {
		if isTerminal(e.stdout) {
			return usagef("standard output is a terminal: redirect it to a file, or give a PATH")
		}
		summary = e.stderr
		res, err = backup.Write(ctx, e.stdout, o)
		path = "standard output"
	} else {
		res, err = backup.WriteFile(ctx, path, *force, o)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(summary, "backup: wrote %s (%s, %d files, %s of data) in %s\n",
		path, backup.Size(res.Size), len(res.Manifest.Files), backup.Size(res.Manifest.DataSize()), round(res.Duration))
	return nil
}

func restoreCmd(ctx context.Context, args []string, e env) error {
	fs := flags(e, "restore", restoreUsage)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return usagef("restore needs one PATH, the backup archive to restore")
	}
	cfg, err := config.Load(fs, e.environ)
	if err != nil {
		return err
	}
	res, err := backup.Restore(ctx, backup.RestoreOptions{
		Archive: pos[0], Engine: cfg.Engine(), PostgresURL: cfg.DB,
		Layout:  backup.Layout{Dir: cfg.Dir, DBPath: cfg.SQLitePath(), MigrationsDir: cfg.MigrationsPath()},
		Environ: e.environ, Progress: progress(e),
	})
	if err != nil {
		return err
	}
	m := res.Manifest
	fmt.Fprintf(e.stdout, "restore: restored %s (%s backup of %s, strata %s) into %s in %s\n",
		pos[0], m.Engine, m.Created.Format(time.RFC3339), m.StrataVersion, cfg.Dir, round(res.Duration))
	return nil
}

// progress reports on stderr: a bar on a terminal, else a line a second.
func progress(e env) backup.Progress {
	return backup.NewProgress(e.stderr, isTerminal(e.stderr), time.Second)
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}

// strataVersion is the version recorded in a backup's manifest.
func strataVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}
