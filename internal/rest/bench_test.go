package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/auth"
	"github.com/strata-dev/strata/internal/identity"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/rest"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/storetest"
)

// BenchmarkHTTP measures whole requests through the handler (no network):
// what the API adds on top of the records service.
func BenchmarkHTTP(b *testing.B) {
	ctx := context.Background()
	db := storetest.Open(b, "sqlite")
	signer, err := auth.LoadSigner(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	recs, err := records.New(ctx, records.Options{DB: db, Secret: signer.Secret("cursor")})
	if err != nil {
		b.Fatal(err)
	}
	ident := identity.New(identity.Options{DB: db, Records: recs, Signer: signer})
	h := rest.New(rest.Options{Records: recs, DB: db, Signer: signer, Identity: ident, Logger: slog.New(slog.DiscardHandler)})
	f64 := func(v float64) *float64 { return &v }
	if _, err := recs.CreateCollection(ctx, &schema.Collection{Name: "posts", Fields: []*schema.Field{
		{Name: "title", Type: schema.Text, Required: true, Max: f64(200)},
		{Name: "views", Type: schema.Number, Min: f64(0)},
		{Name: "published", Type: schema.Bool},
	}, Indexes: []schema.Index{{Fields: []string{"published", "views"}}}}); err != nil {
		b.Fatal(err)
	}
	var id string
	for i := range 5000 {
		c, err := recs.Create(ctx, "posts", map[string]json.RawMessage{
			"title": json.RawMessage(fmt.Sprintf(`"post %d"`, i)), "views": json.RawMessage(fmt.Sprint(i % 1000)),
			"published": json.RawMessage(fmt.Sprint(i%2 == 0))}, records.WriteOptions{})
		if err != nil {
			b.Fatal(err)
		}
		id = c.Record.ID
	}
	tok, _ := signer.Issue(auth.Principal{ID: "su", Role: auth.RoleSuperuser}, time.Hour, time.Now())
	get := func(path string) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest("GET", path, nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Errorf("%s: %d %s", path, w.Code, w.Body)
						return
					}
				}
			})
		}
	}
	b.Run("view", get("/api/v1/collections/posts/records/"+id))
	b.Run("list", get("/api/v1/collections/posts/records?limit=50&sort=-views&filter="+url.QueryEscape("published = true && views >= 500")))
}
