package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/strata-dev/strata/internal/audit"
	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

// TestOpenTogether: nodes that start at the same time on one fresh
// PostgreSQL database all open it (creating the system tables must not
// deadlock).
func TestOpenTogether(t *testing.T) {
	if len(storetest.Engines(t)) < 2 {
		t.Skip("needs PostgreSQL")
	}
	url := storetest.Schema(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			db, err := store.Open(context.Background(), store.Params{Engine: "postgres", URL: url})
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			// What each node creates next at start: the audit log.
			if err := audit.Ensure(context.Background(), db); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
