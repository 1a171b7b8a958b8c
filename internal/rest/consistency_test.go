package rest_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/rest"
	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

// TestConsistencyToken: with the replica paused, the response of a write
// carries a token, and a later request with it reads the write (from the
// primary); one without it reads the replica's past.
func TestConsistencyToken(t *testing.T) {
	replica := storetest.Replica(t)
	p := storetest.Params(t, "postgres")
	p.Replicas = []string{replica}
	p.ReplicaMaxLag = time.Minute
	db, err := store.Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	write := func(ctx context.Context, stmt string) error {
		return db.Write(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, stmt)
			return err
		})
	}
	setup := store.WithSession(context.Background())
	if err := write(setup, `CREATE TABLE items (id int)`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := db.Replicas()[0]
		if l, err := store.ParseLSN(st.ReplayLSN); err == nil && l >= store.LastLSN(setup) && st.InRotation {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica does not catch up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	admin, err := sql.Open("pgx", replica)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(`SELECT pg_wal_replay_resume()`)

	h := rest.Consistency(db, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if err := write(r.Context(), `INSERT INTO items VALUES (1)`); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.WriteHeader(http.StatusCreated)
			return
		}
		var n int
		if err := db.Reader().QueryRowContext(r.Context(), `SELECT COUNT(*) FROM items`).Scan(&n); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write([]byte(strconv.Itoa(n)))
	}))
	serve := func(method, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/", nil)
		if token != "" {
			req.Header.Set(store.ConsistencyHeader, token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	post := serve(http.MethodPost, "")
	token := post.Header().Get(store.ConsistencyHeader)
	if post.Code != http.StatusCreated || token == "" {
		t.Fatalf("POST: %d, token %q", post.Code, token)
	}
	if got := serve(http.MethodGet, token); got.Body.String() != "1" || got.Header().Get(store.ConsistencyHeader) != "" {
		t.Errorf("GET with the token: %q, token %q; want 1 and no token (it wrote nothing)", got.Body, got.Header().Get(store.ConsistencyHeader))
	}
	if got := serve(http.MethodGet, ""); got.Body.String() != "0" {
		t.Errorf("GET without the token from the paused replica: %q, want 0", got.Body)
	}
	if got := serve(http.MethodGet, "not-a-token"); got.Code != 200 {
		t.Errorf("GET with a bad token: %d", got.Code)
	}
}

// TestConsistencyWithoutReplicas: on a database without replicas every read
// sees every write, so Consistency adds nothing to a request: it is the
// handler it wraps, and a write's response carries no token.
func TestConsistencyWithoutReplicas(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			db := storetest.Open(t, engine)
			next := &writeHandler{db: db}
			h := rest.Consistency(db, next)
			if h != http.Handler(next) {
				t.Fatalf("Consistency wrapped the handler in %T", h)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
			if rec.Code != http.StatusCreated || rec.Header().Get(store.ConsistencyHeader) != "" {
				t.Errorf("POST: %d, token %q; want 201 and no token", rec.Code, rec.Header().Get(store.ConsistencyHeader))
			}
		})
	}
}

// writeHandler commits a write and answers 201.
type writeHandler struct{ db *store.DB }

func (h *writeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	err := h.db.Write(r.Context(), func(tx *store.Tx) error {
		_, err := tx.ExecContext(r.Context(), `CREATE TABLE IF NOT EXISTS items (id int)`)
		return err
	})
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.WriteHeader(http.StatusCreated)
}
