package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

// TestIdempotencyExpiry: an entry is found until it expires; after that
// the key can be used again, and pruning removes it.
func TestIdempotencyExpiry(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			db := storetest.Open(t, engine)
			ctx := context.Background()
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			put := func(hash string, now time.Time) error {
				return db.Write(ctx, func(tx *store.Tx) error {
					return store.PutIdempotent(ctx, tx, "s", "k", &store.Idempotent{BodyHash: hash, Status: 201, Response: []byte(`{}`)}, now, now.Add(time.Hour))
				})
			}
			if err := put("h1", t0); err != nil {
				t.Fatal(err)
			}
			if err := put("h2", t0.Add(30*time.Minute)); !errors.Is(err, store.ErrConflict) {
				t.Errorf("second put within the window: %v", err)
			}
			it, err := store.FindIdempotent(ctx, db.Reader(), db.Dialect(), "s", "k", t0.Add(59*time.Minute))
			if err != nil || it.BodyHash != "h1" {
				t.Fatalf("find within the window: %+v %v", it, err)
			}
			if _, err := store.FindIdempotent(ctx, db.Reader(), db.Dialect(), "s", "k", t0.Add(61*time.Minute)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("find after expiry: %v", err)
			}
			if err := put("h3", t0.Add(2*time.Hour)); err != nil {
				t.Errorf("reuse after expiry: %v", err)
			}
			n, err := db.PruneIdempotent(ctx, t0.Add(4*time.Hour))
			if err != nil || n != 1 {
				t.Errorf("prune: %d %v", n, err)
			}
		})
	}
}
