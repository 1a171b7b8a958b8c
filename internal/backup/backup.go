// Package backup makes and restores backups of a Strata installation: a
// consistent snapshot of the database (SQLite by VACUUM INTO, PostgreSQL by
// pg_dump) together with what the data needs to be usable, the signing keys
// and secret of the data directory and the migration files, in one
// gzip-compressed tar archive with a manifest of sizes and SHA-256 sums.
//
// Backups are made online: a server may keep serving and writing on the
// same database meanwhile. Restores go into an empty data directory (and,
// for PostgreSQL, a database without Strata's tables), check every byte of
// the archive before anything is put in place, and leave nothing behind
// when they fail.
package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Options says what to back up.
type Options struct {
	// Engine is "sqlite" or "postgres".
	Engine string
	// DBPath is the SQLite database file.
	DBPath string
	// PostgresURL is the PostgreSQL connection URL.
	PostgresURL string
	// Dir is the data directory, holding the secret and keys/.
	Dir string
	// MigrationsDir holds the migration files; missing means none.
	MigrationsDir string
	// StrataVersion is recorded in the manifest.
	StrataVersion string
	// TempDir is where the snapshot is staged; "" means os.TempDir().
	TempDir string
	// Environ is the environment of pg_dump, as os.Environ returns; the
	// connection settings are added to it.
	Environ []string
	// Progress is told how the work goes; nil reports nothing.
	Progress Progress
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Result describes a finished backup or restore.
type Result struct {
	Manifest *Manifest
	// Size is the size of the archive in bytes.
	Size int64
	// Duration is how long the work took.
	Duration time.Duration
}

// Write makes a backup and writes the archive to w. The snapshot is staged
// in o.TempDir and removed afterwards.
func Write(ctx context.Context, w io.Writer, o Options) (*Result, error) {
	start := time.Now()
	if o.Progress == nil {
		o.Progress = Discard
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	work, err := os.MkdirTemp(o.TempDir, ".strata-backup-*")
	if err != nil {
		return nil, fmt.Errorf("backup: create work directory: %w", err)
	}
	defer os.RemoveAll(work)

	m := &Manifest{Format: FormatVersion, StrataVersion: o.StrataVersion, Engine: o.Engine}
	var data entry
	switch o.Engine {
	case "sqlite":
		dst := filepath.Join(work, sqliteName)
		m.Created = now().UTC()
		if err := snapshotSQLite(ctx, o.DBPath, dst, o.Progress); err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		data, err = diskEntry(ctx, sqliteName, dst)
	case "postgres":
		dst := filepath.Join(work, dumpName)
		m.Created = now().UTC()
		m.Postgres, err = dumpPostgres(ctx, o.PostgresURL, dst, o.Environ, o.Progress)
		if err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		data, err = diskEntry(ctx, dumpName, dst)
	default:
		return nil, fmt.Errorf("backup: unknown engine %q", o.Engine)
	}
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	// The keys are read after the snapshot: a key that signed a token the
	// snapshot knows of is there unless rotation has retired it.
	files, err := dataDirFiles(o.Dir, o.MigrationsDir)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	cw := &countingWriter{w: w}
	if err := writeArchive(ctx, cw, m, append([]entry{data}, files...), o.Progress); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return &Result{Manifest: m, Size: cw.n, Duration: time.Since(start)}, nil
}

// WriteFile makes a backup into the file at path. The archive is written
// under a temporary name beside path and renamed when complete, so a
// failed backup never leaves a partial file at path. An existing path is
// refused unless force is set.
func WriteFile(ctx context.Context, path string, force bool, o Options) (*Result, error) {
	if err := checkOverwrite(path, force); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if o.TempDir == "" {
		o.TempDir = dir
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("backup: create %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	res, err := Write(ctx, f, o)
	if err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("backup: write %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("backup: write %s: %w", tmp, err)
	}
	if err := checkOverwrite(path, force); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return res, nil
}

// ErrExists is returned by WriteFile when the path exists and force is
// not set.
var ErrExists = errors.New("file exists")

func checkOverwrite(path string, force bool) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("backup: %s exists and is not a regular file", path)
	}
	if !force {
		return fmt.Errorf("backup: %s: %w; pass --force to overwrite it", path, ErrExists)
	}
	return nil
}

// dataDirFiles reads the key material of the data directory (secret and
// keys/*.pem, as auth.LoadSigner reads them) and the migration files
// (*.json, as records.ReadDir reads them).
func dataDirFiles(dir, migrations string) ([]entry, error) {
	secretPath := filepath.Join(dir, secretName)
	secret, err := os.ReadFile(secretPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no secret at %s: is %s the data directory of the server (--dir)?", secretPath, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", secretPath, err)
	}
	out := []entry{memEntry(secretName, secret)}
	keys, err := readFiles(filepath.Join(dir, keysDir), ".pem")
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no signing keys in %s: is %s the data directory of the server (--dir)?", filepath.Join(dir, keysDir), dir)
	}
	for _, k := range keys {
		out = append(out, memEntry(keysDir+"/"+k.name, k.data))
	}
	migs, err := readFiles(migrations, ".json")
	if err != nil {
		return nil, err
	}
	for _, m := range migs {
		out = append(out, memEntry(migrDir+"/"+m.name, m.data))
	}
	return out, nil
}

type namedFile struct {
	name string
	data []byte
}

// readFiles reads the files of dir whose names end in suffix, by name; a
// missing dir holds none. Hidden files (temporary ones) are skipped.
func readFiles(dir, suffix string) ([]namedFile, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var out []namedFile
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, suffix) || strings.HasPrefix(name, ".") {
			continue
		}
		if !validName(name) {
			return nil, fmt.Errorf("%s: the name has characters a backup cannot hold (letters, digits, '.', '_' and '-' only)", filepath.Join(dir, name))
		}
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		out = append(out, namedFile{name, data})
	}
	slices.SortFunc(out, func(a, b namedFile) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
