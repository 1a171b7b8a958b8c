package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// TestSQLiteMmap: the writer and every reader map as much of the file as
// Params.MmapSize says, and none of it when it is 0.
func TestSQLiteMmap(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int64{0, 64 << 20} {
		db, err := Open(ctx, Params{Engine: "sqlite", Path: filepath.Join(t.TempDir(), "d.db"), Readers: 2, MmapSize: size})
		if err != nil {
			t.Fatal(err)
		}
		// Hold both readers at once so that each answers.
		var conns []*sql.Conn
		for range 2 {
			c, err := db.reader.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for i, c := range conns {
			var got int64
			if err := c.QueryRowContext(ctx, "PRAGMA mmap_size").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != size {
				t.Errorf("MmapSize %d: reader %d maps %d bytes", size, i, got)
			}
			c.Close()
		}
		if err := db.Write(ctx, func(tx *Tx) error {
			var got int64
			if err := tx.QueryRowContext(ctx, "PRAGMA mmap_size").Scan(&got); err != nil {
				return err
			}
			if got != size {
				t.Errorf("MmapSize %d: the writer maps %d bytes", size, got)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
}

// TestGetIgnoresCancel: a read of one record by id does not watch its
// context (the watch cost more than the read), so it answers even when
// the context has ended.
func TestGetIgnoresCancel(t *testing.T) {
	db, c, ids := benchDB(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := GetRecordIf(ctx, db.Reader(), c, ids[1], "", args(db.Dialect()), false)
	if err != nil || r.ID != ids[1] {
		t.Fatalf("GetRecordIf with an ended context = %v, %v", r, err)
	}
}
