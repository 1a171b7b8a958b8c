package backup

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/ascii"
)

// FormatVersion is the version of the archive layout written by this
// package. A reader refuses archives of a newer format.
const FormatVersion = 1

// Names of the files in an archive. Paths are slash-separated and relative;
// keys and migrations sit in folders of their own.
const (
	manifestName = "manifest.json"
	sqliteName   = "data.db"
	dumpName     = "postgres.dump"
	secretName   = "secret"
	keysDir      = "keys"
	migrDir      = "migrations"
)

// Limits that keep a hostile archive from costing much before it is
// found out.
const (
	maxManifestSize = 4 << 20
	maxFiles        = 100000
)

// Manifest describes the contents of a backup archive. It is the archive's
// first file, manifest.json.
type Manifest struct {
	// Format is the archive layout version, FormatVersion when written.
	Format int `json:"format"`
	// StrataVersion is the version of the strata that wrote the archive.
	StrataVersion string `json:"strata_version"`
	// Engine is "sqlite" or "postgres".
	Engine string `json:"engine"`
	// Created is when the snapshot was taken.
	Created time.Time `json:"created"`
	// Postgres describes the dump of a PostgreSQL backup.
	Postgres *PostgresInfo `json:"postgres,omitempty"`
	// Files lists every other file of the archive in the order they follow
	// the manifest.
	Files []File `json:"files"`
}

// PostgresInfo describes the dump in a PostgreSQL backup.
type PostgresInfo struct {
	// ServerVersion is the server's version, as server_version_num.
	ServerVersion int `json:"server_version"`
	// DumpVersion is the version of pg_dump that made the dump, such as
	// "15.14".
	DumpVersion string `json:"pg_dump_version"`
	// Schemas lists the schemas dumped; empty for the whole database.
	Schemas []string `json:"schemas,omitempty"`
}

// File is one file of an archive.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

var nameFirst, nameRest = ascii.NewSet("A-Za-z0-9_-"), ascii.NewSet("A-Za-z0-9._-")

// validName reports whether s may be the base name of a key or migration
// file: no separators, no leading dot, so never "." or "..".
func validName(s string) bool { return ascii.Name(s, nameFirst, nameRest, 1, 255) }

// validPath reports whether p is a path an archive may hold: data.db,
// postgres.dump, secret, keys/NAME.pem or migrations/NAME.json. Nothing
// else is accepted, so no path can leave the directory it is restored to.
func validPath(p string) bool {
	switch p {
	case sqliteName, dumpName, secretName:
		return true
	}
	dir, name, ok := strings.Cut(p, "/")
	if !ok || !validName(name) {
		return false
	}
	switch dir {
	case keysDir:
		return strings.HasSuffix(name, ".pem")
	case migrDir:
		return strings.HasSuffix(name, ".json")
	}
	return false
}

// validate checks a manifest read from an archive.
func (m *Manifest) validate() error {
	if m.Format < 1 {
		return fmt.Errorf("format %d is not a strata backup format", m.Format)
	}
	if m.Format > FormatVersion {
		return fmt.Errorf("format %d is newer than this strata reads (%d); restore with a newer strata", m.Format, FormatVersion)
	}
	var data string
	switch m.Engine {
	case "sqlite":
		data = sqliteName
	case "postgres":
		data = dumpName
		if m.Postgres == nil {
			return errors.New("a postgres backup without its postgres section")
		}
	default:
		return fmt.Errorf("unknown engine %q", m.Engine)
	}
	if len(m.Files) > maxFiles {
		return fmt.Errorf("%d files, more than the %d allowed", len(m.Files), maxFiles)
	}
	seen := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		if !validPath(f.Path) {
			return fmt.Errorf("file %q is not a path a strata backup holds", f.Path)
		}
		if f.Path == sqliteName || f.Path == dumpName {
			if f.Path != data {
				return fmt.Errorf("a %s backup holds %s", m.Engine, f.Path)
			}
		}
		if seen[f.Path] {
			return fmt.Errorf("file %s is listed twice", f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 {
			return fmt.Errorf("file %s has a negative size", f.Path)
		}
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != 32 || strings.ToLower(f.SHA256) != f.SHA256 {
			return fmt.Errorf("file %s has no valid SHA-256", f.Path)
		}
	}
	for _, need := range []string{data, secretName} {
		if !seen[need] {
			return fmt.Errorf("%s is missing", need)
		}
	}
	return nil
}

// DataSize is the total size of the files the manifest lists.
func (m *Manifest) DataSize() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}
