package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/identity"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/rest"
	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

// testEnv is one API over a fresh database, with a signed-in superuser.
type testEnv struct {
	t      *testing.T
	engine string
	h      http.Handler
	db     *store.DB
	recs   *records.Service
	signer *auth.Signer
	token  string
	migDir string
	// skew moves the clock of the identity service and token checks.
	skew time.Duration
	mail *mailbox
}

func (e *testEnv) clock() time.Time { return time.Now().Add(e.skew) }

const (
	adminEmail    = "admin@example.com"
	adminPassword = "correct horse battery"
)

// forEachEngine runs f against every engine the tests can reach.
func forEachEngine(t *testing.T, f func(t *testing.T, e *testEnv)) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) { f(t, newEnv(t, engine)) })
	}
}

// newEnv builds the API over a fresh database of engine; opts adjust its
// options before it is built.
func newEnv(t *testing.T, engine string, opts ...func(*rest.Options)) *testEnv {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, engine)
	dir := t.TempDir()
	signer, err := auth.LoadSigner(dir)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	migDir := dir + "/migrations"
	e := &testEnv{t: t, engine: engine, db: db, migDir: migDir}
	recs, err := records.New(ctx, records.Options{DB: db, Secret: signer.Secret("cursor"), MigrationsDir: migDir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recs.Close(context.Background()) })
	e.mail = startMailbox(t)
	mailer, err := identity.NewSMTP("smtp://"+e.mail.addr, "strata@example.com")
	if err != nil {
		t.Fatal(err)
	}
	ident := identity.New(identity.Options{DB: db, Records: recs, Signer: signer, Logger: log, Now: e.clock, Mailer: mailer})
	t.Cleanup(ident.Close)
	o := rest.Options{Records: recs, DB: db, Signer: signer, Identity: ident, Logger: log, MaxBodyBytes: 64 << 10, Now: e.clock}
	for _, f := range opts {
		f(&o)
	}
	h := rest.New(o)
	e.h, e.recs, e.signer = h, recs, signer
	hash, err := auth.HashPassword(adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = db.Write(ctx, func(tx *store.Tx) error {
		return store.PutSuperuser(ctx, tx, &store.Superuser{ID: records.NewID(), Email: adminEmail, PasswordHash: hash, Created: now, Updated: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	res := e.anon("POST", "/api/v1/admin/login", map[string]string{"email": adminEmail, "password": adminPassword})
	res.status(200)
	e.token = res.json()["access_token"].(string)
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// response is a recorded response with assertion helpers.
type response struct {
	t *testing.T
	*httptest.ResponseRecorder
	method, path string
}

// request sends a request as the superuser. body is JSON-encoded unless it
// is a string or []byte; headers come in name, value pairs.
func (e *testEnv) request(method, path string, body any, headers ...string) *response {
	e.t.Helper()
	return e.send(method, path, body, append([]string{"Authorization", "Bearer " + e.token}, headers...)...)
}

// anon sends a request without credentials.
func (e *testEnv) anon(method, path string, body any, headers ...string) *response {
	e.t.Helper()
	return e.send(method, path, body, headers...)
}

func (e *testEnv) send(method, path string, body any, headers ...string) *response {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req := httptest.NewRequest(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return &response{t: e.t, ResponseRecorder: rec, method: method, path: path}
}

func (r *response) status(want int) *response {
	r.t.Helper()
	if r.Code != want {
		r.t.Fatalf("%s %s: status %d, want %d; body: %s", r.method, r.path, r.Code, want, r.Body.String())
	}
	return r
}

func (r *response) json() map[string]any {
	r.t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body.Bytes(), &m); err != nil {
		r.t.Fatalf("%s %s: body is not a JSON object: %v: %s", r.method, r.path, err, r.Body.String())
	}
	return m
}

// problem checks that the response is a problem document with the status
// and returns it.
func (r *response) problem(status int) map[string]any {
	r.t.Helper()
	r.status(status)
	if ct := r.Header().Get("Content-Type"); ct != "application/problem+json" {
		r.t.Fatalf("%s %s: Content-Type %q, want application/problem+json", r.method, r.path, ct)
	}
	m := r.json()
	if m["status"] != float64(status) || m["type"] == "" || m["title"] == "" {
		r.t.Fatalf("%s %s: not a complete problem document: %s", r.method, r.path, r.Body.String())
	}
	return m
}

// ids returns the ids of a list response's items, in order.
func (r *response) ids() []string {
	r.t.Helper()
	var out []string
	for _, it := range r.json()["items"].([]any) {
		out = append(out, it.(map[string]any)["id"].(string))
	}
	return out
}

// mustCreate creates a record and returns its JSON.
func (e *testEnv) mustCreate(collection string, body any) map[string]any {
	e.t.Helper()
	return e.request("POST", "/api/v1/collections/"+collection+"/records", body).status(201).json()
}

// count returns how many records a collection holds.
func (e *testEnv) count(collection string) int {
	e.t.Helper()
	m := e.request("GET", "/api/v1/collections/"+collection+"/records?total=true&limit=1", nil).status(200).json()
	return int(m["total"].(float64))
}
