package records

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/ascii"
	"github.com/strata-dev/strata/internal/store"
)

// File is a migration as kept in version control: the ops that apply it and
// the ops that undo it. Files are named ID.json and applied in ID order.
type File struct {
	ID   string `json:"id"`
	Up   []Op   `json:"up"`
	Down []Op   `json:"down"`
}

var digits, migrationName = ascii.NewSet("0-9"), ascii.NewSet("a-z0-9_")

// validMigrationID reports whether id is ^[0-9]{20}_[a-z0-9_]{1,100}$.
func validMigrationID(id string) bool {
	return len(id) > 21 && digits.All(id[:20]) && id[20] == '_' && ascii.Name(id[21:], migrationName, migrationName, 1, 100)
}

// MigrationID names a migration made at t: a sortable timestamp with
// microseconds, then name.
func MigrationID(t time.Time, name string) string {
	t = t.UTC()
	return fmt.Sprintf("%s%06d_%s", t.Format("20060102150405"), t.Nanosecond()/1000, name)
}

// ParseFile decodes a migration file, refusing unknown keys.
func ParseFile(data []byte) (File, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return File{}, fmt.Errorf("not a migration: %w", err)
	}
	if dec.More() {
		return File{}, errors.New("not a migration: data after the JSON object")
	}
	if !validMigrationID(f.ID) {
		return File{}, fmt.Errorf("migration id %q must be 20 digits, an underscore and a name of a-z, 0-9 and _", f.ID)
	}
	if len(f.Up) == 0 {
		return File{}, fmt.Errorf("migration %s has no up ops", f.ID)
	}
	return f, nil
}

// Write writes the file into dir as ID.json, atomically.
func (f File) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".migration-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, f.ID+".json"))
}

// ReadDir reads every migration file in dir, sorted by ID. A missing dir
// holds no migrations.
func ReadDir(dir string) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []File
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		f, err := ParseFile(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if f.ID+".json" != e.Name() {
			return nil, fmt.Errorf("%s: file name must be its id, %s.json", path, f.ID)
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func recordMigration(ctx context.Context, tx *store.Tx, f File, now time.Time) error {
	up, err := json.Marshal(f.Up)
	if err != nil {
		return err
	}
	down, err := json.Marshal(f.Down)
	if err != nil {
		return err
	}
	return store.RecordMigration(ctx, tx, store.Migration{ID: f.ID, Up: up, Down: down, Applied: now})
}

// MigrationStatus is one migration as seen in the directory and database.
type MigrationStatus struct {
	ID      string
	Applied *time.Time // nil when pending
	InDir   bool
}

// Status lists migrations applied or waiting in dir, in ID order.
func (s *Service) Status(ctx context.Context, dir string) ([]MigrationStatus, error) {
	files, err := ReadDir(dir)
	if err != nil {
		return nil, err
	}
	applied, err := store.Migrations(ctx, s.db.Reader())
	if err != nil {
		return nil, err
	}
	byID := map[string]*MigrationStatus{}
	for _, m := range applied {
		t := m.Applied
		byID[m.ID] = &MigrationStatus{ID: m.ID, Applied: &t}
	}
	for _, f := range files {
		if st := byID[f.ID]; st != nil {
			st.InDir = true
		} else {
			byID[f.ID] = &MigrationStatus{ID: f.ID, InDir: true}
		}
	}
	out := make([]MigrationStatus, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		out = append(out, *byID[id])
	}
	return out, nil
}

// Pending counts the migrations in dir not yet applied.
func (s *Service) Pending(ctx context.Context, dir string) (int, error) {
	st, err := s.Status(ctx, dir)
	n := 0
	for _, m := range st {
		if m.Applied == nil {
			n++
		}
	}
	return n, err
}

// Up applies, in ID order and each in its own transaction, the migrations
// in dir not yet applied. It returns the IDs it applied.
func (s *Service) Up(ctx context.Context, dir string) ([]string, error) {
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	files, err := ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var done []string
	for _, f := range files {
		if err := s.reload(ctx); err != nil {
			return done, err
		}
		applied, err := store.Migrations(ctx, s.db.Reader())
		if err != nil {
			return done, err
		}
		if slices.ContainsFunc(applied, func(m store.Migration) bool { return m.ID == f.ID }) {
			continue
		}
		reg := maps.Clone(s.registry())
		err = s.db.Write(ctx, func(tx *store.Tx) error {
			if err := applyOps(ctx, tx, reg, f.Up); err != nil {
				return err
			}
			return recordMigration(ctx, tx, f, s.now().UTC())
		})
		if err != nil {
			return done, fmt.Errorf("migration %s: %w", f.ID, err)
		}
		s.cols.Store(&reg)
		done = append(done, f.ID)
	}
	return done, nil
}

// Down undoes the last applied migration and returns its ID, or "" when
// none is applied. Undoing a migration that dropped a field or collection
// brings back its definition, not its data.
func (s *Service) Down(ctx context.Context) (string, error) {
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	if err := s.reload(ctx); err != nil {
		return "", err
	}
	applied, err := store.Migrations(ctx, s.db.Reader())
	if err != nil || len(applied) == 0 {
		return "", err
	}
	last := applied[len(applied)-1]
	var down []Op
	if err := json.Unmarshal(last.Down, &down); err != nil {
		return "", fmt.Errorf("migration %s: corrupt down ops: %w", last.ID, err)
	}
	reg := maps.Clone(s.registry())
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if err := applyOps(ctx, tx, reg, down); err != nil {
			return err
		}
		return store.ForgetMigration(ctx, tx, last.ID)
	})
	if err != nil {
		return "", fmt.Errorf("undo migration %s: %w", last.ID, err)
	}
	s.cols.Store(&reg)
	return last.ID, nil
}

// Export writes every applied migration into dir as a file and returns how
// many it wrote.
func (s *Service) Export(ctx context.Context, dir string) (int, error) {
	applied, err := store.Migrations(ctx, s.db.Reader())
	if err != nil {
		return 0, err
	}
	for _, m := range applied {
		f := File{ID: m.ID}
		if err := json.Unmarshal(m.Up, &f.Up); err != nil {
			return 0, fmt.Errorf("migration %s: %w", m.ID, err)
		}
		if err := json.Unmarshal(m.Down, &f.Down); err != nil {
			return 0, fmt.Errorf("migration %s: %w", m.ID, err)
		}
		if err := f.Write(dir); err != nil {
			return 0, err
		}
	}
	return len(applied), nil
}

func asUnique(err error) (*store.UniqueError, bool) {
	var ue *store.UniqueError
	ok := errors.As(err, &ue)
	return ue, ok
}
