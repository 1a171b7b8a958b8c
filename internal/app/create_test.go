package app

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/strata-dev/strata/internal/storetest"
)

// TestCreateAnswer: the answer to a create is the record as a read of it
// returns it, with the same ETag, whether or not the collection hides a
// field (the record's JSON is encoded once for its event and the answer
// only when the two are the same), and a replay of an idempotent create
// returns it again.
func TestCreateAnswer(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			ta := newTestApp(t, engine)
			ta.do("POST", "/api/v1/collections", `{"name":"open","fields":[{"name":"title","type":"text"}]}`, 201, nil)
			ta.do("POST", "/api/v1/collections", `{"name":"hiding","fields":[{"name":"title","type":"text"},{"name":"secret","type":"text","hidden":true}]}`, 201, nil)
			for _, c := range []struct{ name, body string }{
				{"open", `{"title":"t"}`},
				{"hiding", `{"title":"t","secret":"s3cr3t"}`},
			} {
				var created, replayed, read json.RawMessage
				h := ta.do("POST", "/api/v1/collections/"+c.name+"/records", c.body, 201, &created, "Idempotency-Key", "k-"+c.name)
				ta.do("POST", "/api/v1/collections/"+c.name+"/records", c.body, 201, &replayed, "Idempotency-Key", "k-"+c.name)
				var rec struct{ ID string }
				if err := json.Unmarshal(created, &rec); err != nil {
					t.Fatal(err)
				}
				rh := ta.do("GET", "/api/v1/collections/"+c.name+"/records/"+rec.ID, "", 200, &read)
				if !bytes.Equal(created, read) || !bytes.Equal(replayed, created) {
					t.Errorf("%s: created %s\nreplayed %s\nread %s", c.name, created, replayed, read)
				}
				if h.Get("ETag") == "" || h.Get("ETag") != rh.Get("ETag") {
					t.Errorf("%s: ETag %q after the create, %q on a read", c.name, h.Get("ETag"), rh.Get("ETag"))
				}
				if bytes.Contains(created, []byte("s3cr3t")) || bytes.Contains(created, []byte(`"secret"`)) {
					t.Errorf("%s: the answer shows the hidden field: %s", c.name, created)
				}
			}
		})
	}
}
