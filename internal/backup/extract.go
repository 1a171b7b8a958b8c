package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Layout says where the files of a backup go when it is restored.
type Layout struct {
	// Dir is the data directory: secret and keys/ go there.
	Dir string
	// DBPath is the SQLite database file.
	DBPath string
	// MigrationsDir receives the migration files.
	MigrationsDir string
}

// target returns where the archive file name is restored to. name must
// have passed validPath, which admits no separators or dot names beyond
// the one folder, so the result never leaves the layout's directories.
func (l Layout) target(name string) string {
	switch name {
	case sqliteName:
		return l.DBPath
	case dumpName:
		return filepath.Join(l.Dir, dumpName)
	case secretName:
		return filepath.Join(l.Dir, secretName)
	}
	dir, base, _ := strings.Cut(name, "/")
	if dir == migrDir {
		return filepath.Join(l.MigrationsDir, base)
	}
	return filepath.Join(l.Dir, keysDir, base)
}

// staging holds the files of a restore under temporary names beside their
// targets until every byte has been checked; then commit renames them into
// place, or abort removes them and any directory it made, so a failed
// restore leaves nothing behind.
type staging struct {
	layout  Layout
	dirs    []string          // made by this restore, parents first
	temps   map[string]string // archive name -> temporary path
	order   []string          // archive names, in the order staged
	renamed []string          // targets already in place, for abort
}

func newStaging(l Layout) *staging {
	return &staging{layout: l, temps: make(map[string]string)}
}

// mkdirAll makes dir and its missing parents, remembering the ones it made.
func (s *staging) mkdirAll(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o750); err != nil {
			return fmt.Errorf("create %s: %w", missing[i], err)
		}
		s.dirs = append(s.dirs, missing[i])
	}
	return nil
}

// add writes the file name from r under a temporary name beside its
// target. r must fail when its bytes are not the archive's.
func (s *staging) add(ctx context.Context, name string, r io.Reader) error {
	target := s.layout.target(name)
	if err := s.mkdirAll(filepath.Dir(target)); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".restore")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("restore %s: %w", name, err)
	}
	s.temps[name] = tmp
	s.order = append(s.order, name)
	if _, err := io.Copy(f, ctxReader{ctx, r}); err != nil {
		f.Close()
		return fmt.Errorf("restore %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("restore %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("restore %s: %w", name, err)
	}
	return nil
}

// path returns the temporary path of a staged file, "" if none.
func (s *staging) path(name string) string { return s.temps[name] }

// discard removes a staged file that is used up, such as a dump once
// loaded.
func (s *staging) discard(name string) error {
	tmp, ok := s.temps[name]
	if !ok {
		return nil
	}
	delete(s.temps, name)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", tmp, err)
	}
	return nil
}

// commit moves every staged file to its target.
func (s *staging) commit() error {
	dirs := map[string]bool{}
	for _, name := range s.order {
		tmp, ok := s.temps[name]
		if !ok {
			continue
		}
		target := s.layout.target(name)
		if _, err := os.Lstat(target); err == nil {
			return fmt.Errorf("restore %s: %s appeared while restoring", name, target)
		}
		if err := os.Rename(tmp, target); err != nil {
			return fmt.Errorf("restore %s: %w", name, err)
		}
		delete(s.temps, name)
		s.renamed = append(s.renamed, target)
		dirs[filepath.Dir(target)] = true
	}
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}

// abort removes what the restore wrote: staged files, files already moved
// into place and the directories it made.
func (s *staging) abort() {
	for _, tmp := range s.temps {
		os.Remove(tmp)
	}
	for _, target := range s.renamed {
		os.Remove(target)
	}
	for i := len(s.dirs) - 1; i >= 0; i-- {
		os.Remove(s.dirs[i]) // fails, as it should, if something else is there
	}
}

// syncDir makes a directory's entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Extract reads an archive from r into the layout's directories, checking
// every file against the manifest before any is put in place; on failure
// it removes whatever it wrote. It does not check that the targets are
// empty (Restore does), but never overwrites a file.
func Extract(ctx context.Context, r io.Reader, l Layout) (*Manifest, error) {
	s, m, err := extract(ctx, r, l, Discard, 0)
	if err != nil {
		return nil, err
	}
	if err := s.commit(); err != nil {
		s.abort()
		return nil, err
	}
	return m, nil
}

// extract stages the files of the archive in r and returns them staged;
// on error it has already removed them. p is told the bytes read from r,
// of total.
func extract(ctx context.Context, r io.Reader, l Layout, p Progress, total int64) (*staging, *Manifest, error) {
	cr := &countingReader{r: r, p: p}
	p.Start("restore: write", total)
	defer p.Done()
	ar, err := OpenArchive(ctx, cr)
	if err != nil {
		return nil, nil, err
	}
	s := newStaging(l)
	for {
		f, body, err := ar.Next()
		if errors.Is(err, io.EOF) {
			return s, ar.Manifest(), nil
		}
		if err == nil {
			err = s.add(ctx, f.Path, body)
		}
		if err != nil {
			s.abort()
			return nil, nil, err
		}
	}
}

// Verify reads a whole archive from r and checks it against its manifest
// without writing anything. p is told the bytes read from r, of total.
func Verify(ctx context.Context, r io.Reader, p Progress, total int64) (*Manifest, error) {
	cr := &countingReader{r: r, p: p}
	p.Start("restore: verify", total)
	defer p.Done()
	ar, err := OpenArchive(ctx, cr)
	if err != nil {
		return nil, err
	}
	for {
		_, body, err := ar.Next()
		if errors.Is(err, io.EOF) {
			return ar.Manifest(), nil
		}
		if err != nil {
			return nil, err
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return nil, err
		}
	}
}
