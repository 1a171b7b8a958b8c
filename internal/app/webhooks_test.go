package app

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/webhooks"
)

// TestWebhooksThroughTheApp: a superuser registers an endpoint; a record
// created through the API reaches it, signed, through the outbox, the
// broker and the job queue of a serving node.
func TestWebhooksThroughTheApp(t *testing.T) {
	got := make(chan *http.Request, 4)
	bodies := make(chan []byte, 4)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
	}))
	defer recv.Close()
	s := serve(t, "sqlite", func(c *config.Config) { c.WebhookAllowHosts = "127.0.0.1" })
	s.do("POST", "/api/v1/collections", `{"name":"posts","fields":[{"name":"title","type":"text"}]}`, 201, nil)
	var hook struct{ ID, Secret string }
	s.do("POST", "/api/v1/webhooks", `{"url":"`+recv.URL+`/hook","events":[{"collection":"posts","ops":["create"]}]}`, 201, &hook)
	if hook.Secret == "" {
		t.Fatal("no secret in the create answer")
	}
	s.do("POST", "/api/v1/collections/posts/records", `{"title":"hello"}`, 201, nil)
	select {
	case r := <-got:
		body := <-bodies
		if err := webhooks.Verify(hook.Secret, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"),
			r.Header.Get("webhook-signature"), body); err != nil {
			t.Errorf("signature: %v", err)
		}
		var p struct {
			Type string
			Data struct {
				Collection string
				Record     map[string]any
			}
		}
		json.Unmarshal(body, &p)
		if p.Type != "record.created" || p.Data.Collection != "posts" || p.Data.Record["title"] != "hello" {
			t.Errorf("payload %s", body)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no delivery within 15s")
	}
	// Only superusers manage endpoints.
	s.do("GET", "/api/v1/webhooks", "", 401, nil, "Authorization", "")
	var deliveries []json.RawMessage
	waitUntil(t, "the delivery is logged", func() bool {
		var list struct{ Items []json.RawMessage }
		s.do("GET", "/api/v1/webhooks/"+hook.ID+"/deliveries", "", 200, &list)
		deliveries = list.Items
		return len(deliveries) == 1
	})
}
