package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/schema"
)

// benchDB opens a SQLite database with a posts table holding n records and
// returns the collection and the records' ids.
func benchDB(b testing.TB, n int) (*DB, *schema.Collection, []string) {
	b.Helper()
	ctx := context.Background()
	db, err := Open(ctx, Params{Engine: "sqlite", Path: filepath.Join(b.TempDir(), "d.db"), Readers: 4})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	c := &schema.Collection{Name: "posts", Type: schema.Base, Fields: []*schema.Field{
		{Name: "title", Type: schema.Text}, {Name: "views", Type: schema.Number}, {Name: "published", Type: schema.Bool},
	}}
	if err := db.Write(ctx, func(tx *Tx) error { return CreateTable(ctx, tx, c) }); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := 0; i < n; i += 500 {
		err := db.Write(ctx, func(tx *Tx) error {
			for j := i; j < min(n, i+500); j++ {
				ids[j] = fmt.Sprintf("r%06d", j)
				if err := InsertRecord(ctx, tx, c, benchRecord(c, ids[j], j)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return db, c, ids
}

func benchRecord(c *schema.Collection, id string, i int) *schema.Record {
	now := time.Now()
	return &schema.Record{Collection: c, ID: id, Created: now, Updated: now, Values: schema.Values{
		"title": fmt.Sprintf("post number %d", i), "views": float64(i % 1000), "published": i%2 == 0,
	}}
}

// BenchmarkStoreGet reads single records by id on the reader pool.
func BenchmarkStoreGet(b *testing.B) {
	db, c, ids := benchDB(b, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := GetRecord(ctx, db.Reader(), db.Dialect(), c, ids[i%len(ids)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkStoreInsert inserts records from many writers through group
// commit.
func BenchmarkStoreInsert(b *testing.B) {
	db, c, _ := benchDB(b, 0)
	ctx := context.Background()
	var n, commits atomic.Int64
	db.batch.observe = func(int) { commits.Add(1) }
	b.ReportAllocs()
	b.SetParallelism(25)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1))
			err := db.Write(ctx, func(tx *Tx) error {
				return InsertRecord(ctx, tx, c, benchRecord(c, fmt.Sprintf("w%09d", i), i))
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/float64(max(commits.Load(), 1)), "writes/commit")
}
