package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/strata-dev/strata/internal/broker"
	"github.com/strata-dev/strata/internal/jobs"
	"github.com/strata-dev/strata/internal/outbox"
	"github.com/strata-dev/strata/internal/records"
)

var loopback = []string{"127.0.0.1"}

// checkSignature verifies a request as a receiver would, computing the
// HMAC here rather than with the package's signer.
func checkSignature(t *testing.T, secret string, g received) {
	t.Helper()
	id, ts, sig := g.Header.Get("webhook-id"), g.Header.Get("webhook-timestamp"), g.Header.Get("webhook-signature")
	if id == "" || ts == "" || sig == "" {
		t.Fatalf("missing webhook headers: %v", g.Header)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		t.Errorf("webhook-timestamp %q is not the current unix time", ts)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(g.Body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if sig != want {
		t.Errorf("webhook-signature %q, want %q", sig, want)
	}
	if ct := g.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content-type %q", ct)
	}
	if ua := g.Header.Get("User-Agent"); ua != "Strata-Webhooks/1" {
		t.Errorf("user-agent %q", ua)
	}
}

func record(g received) map[string]any {
	data, _ := g.Data["data"].(map[string]any)
	rec, _ := data["record"].(map[string]any)
	return rec
}

// TestEndToEnd follows record changes from the records service through
// the outbox, the broker and the job queue to receivers: signatures,
// headers, trace context, and matching by collection, operation and
// filter.
func TestEndToEnd(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, envOptions{allow: loopback, start: true})
		published := newReceiver(t, nil) // posts create+update where published = true
		creates := newReceiver(t, nil)   // posts create only
		deletes := newReceiver(t, nil)   // deletes anywhere
		all := newReceiver(t, nil)       // everything: tells when every event was dispatched
		epPublished := e.create(published.URL+"/hook?x=1", EventFilter{Collection: "posts", Ops: []string{"create", "update"}, Filter: "published = true"})
		epCreates := e.create(creates.URL, EventFilter{Collection: "posts", Ops: []string{"create"}})
		e.create(deletes.URL, EventFilter{Collection: "*", Ops: []string{"delete"}})
		e.create(all.URL, EventFilter{Collection: "*", Ops: []string{"*"}})

		traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
		spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
		ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled}))
		id1 := e.write(ctx, "posts", `{"title": "one", "published": true, "note": "hidden"}`)
		id2 := e.write(context.Background(), "posts", `{"title": "two", "published": false}`)
		e.update("posts", id1, `{"title": "one, again"}`)
		e.update("posts", id2, `{"title": "two, again"}`)
		e.write(context.Background(), "comments", `{"body": "hi"}`)
		if err := e.recs.Delete(context.Background(), "posts", id2, records.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "every event at the catch-all receiver", func() bool { return all.count() >= 6 })
		waitFor(t, "the delivery jobs to finish", func() bool { return e.pendingJobs() == 0 })

		if got, want := sorted(published.types()), []string{TypeCreated, TypeUpdated}; !slices.Equal(got, want) {
			t.Errorf("filtered receiver got %v, want %v", got, want)
		}
		if got, want := creates.types(), []string{TypeCreated, TypeCreated}; !slices.Equal(got, want) {
			t.Errorf("create-only receiver got %v, want %v (no updates)", got, want)
		}
		if got, want := deletes.types(), []string{TypeDeleted}; !slices.Equal(got, want) {
			t.Errorf("delete receiver got %v, want %v", got, want)
		}
		if all.count() != 6 {
			t.Errorf("catch-all receiver got %d requests, want 6", all.count())
		}

		// Deliveries run as concurrent jobs: their order is not the
		// events' order.
		first, update := published.requests()[0], published.requests()[1]
		if first.Data["type"] != TypeCreated {
			first, update = update, first
		}
		checkSignature(t, epPublished.Secret, first)
		if rec := record(first); rec["id"] != id1 || rec["title"] != "one" {
			t.Errorf("record %v", rec)
		} else if _, ok := rec["note"]; ok {
			t.Errorf("hidden field delivered: %v", rec)
		}
		data := first.Data["data"].(map[string]any)
		if data["collection"] != "posts" {
			t.Errorf("data %v", data)
		}
		if ts, _ := first.Data["timestamp"].(string); ts == "" {
			t.Errorf("no timestamp in %s", first.Body)
		} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("timestamp %q: %v", ts, err)
		}
		if tp := first.Header.Get("traceparent"); !strings.Contains(tp, traceID.String()) {
			t.Errorf("traceparent %q does not continue trace %s", tp, traceID)
		}
		if tp := update.Header.Get("traceparent"); strings.Contains(tp, traceID.String()) {
			t.Errorf("the update, made without a span, carries the create's trace: %q", tp)
		}
		for _, g := range creates.requests() {
			checkSignature(t, epCreates.Secret, g)
		}
		// One delivery logged per request, each a success.
		for _, d := range e.deliveries(epPublished.ID) {
			if !d.Success || d.Status != 200 || d.Attempt != 1 || len(d.Response) != maxSnippet {
				t.Errorf("delivery %+v", d)
			}
		}
		if n := value(e.svc.m.deliveries.WithLabelValues("success", "2xx")); n != 11 {
			t.Errorf("successful deliveries metric %v, want 11", n)
		}
	})
}

// TestRetries: a receiver failing twice gets the event a third time; each
// attempt is logged, with the same webhook-id, and the event is delivered
// once successfully.
func TestRetries(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, envOptions{allow: loopback, start: true})
		r := newReceiver(t, func(n int) int {
			if n <= 2 {
				return http.StatusServiceUnavailable
			}
			return http.StatusNoContent
		})
		ep := e.create(r.URL, EventFilter{Collection: "posts", Ops: []string{"*"}})
		e.write(context.Background(), "posts", `{"title": "x"}`)
		waitFor(t, "three attempts", func() bool { return len(e.deliveries(ep.ID)) == 3 })
		waitFor(t, "the job to complete", func() bool { return len(e.jobsIn(jobs.StateCompleted)) == 1 })
		ds := e.deliveries(ep.ID)
		for i, d := range ds {
			attempt := 3 - i // newest first
			wantStatus, wantOK := http.StatusServiceUnavailable, false
			if attempt == 3 {
				wantStatus, wantOK = http.StatusNoContent, true
			}
			if d.Attempt != attempt || d.Status != wantStatus || d.Success != wantOK || d.Event != ds[0].Event {
				t.Errorf("delivery %d: %+v", i, d)
			}
			if !wantOK && d.Error != "status 503" {
				t.Errorf("delivery %d error %q", i, d.Error)
			}
		}
		reqs := r.requests()
		if len(reqs) != 3 {
			t.Fatalf("%d requests", len(reqs))
		}
		for _, g := range reqs {
			if g.Header.Get("webhook-id") != ds[0].Event {
				t.Errorf("webhook-id %q, want %q", g.Header.Get("webhook-id"), ds[0].Event)
			}
			checkSignature(t, ep.Secret, g)
		}
		if got := e.endpoint(ep.ID); got.Failures != 0 || !got.Enabled {
			t.Errorf("after a success the endpoint is %+v", got)
		}
	})
}

// TestRedelivery: an event dispatched again (the relay publishes again
// what it could not take out of the outbox) adds no second job while the
// first is pending, and sends nothing again once it succeeded.
func TestRedelivery(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, envOptions{allow: loopback}) // no workers: jobs stay pending
		r := newReceiver(t, nil)
		ep := e.create(r.URL, EventFilter{Collection: "posts", Ops: []string{"create"}})
		c, _ := e.recs.Collection(context.Background(), "posts")
		ev := outbox.Event{ID: "0190e6d3-7b4c-7000-8000-000000000001", Op: outbox.OpCreate, Collection: "posts",
			RecordID: "0190e6d3-7b4c-7000-8000-0000000000aa",
			Record:   json.RawMessage(`{"id": "0190e6d3-7b4c-7000-8000-0000000000aa", "title": "t", "created": "2024-01-01T00:00:00.000Z", "updated": "2024-01-01T00:00:00.000Z"}`),
			Time:     time.Now()}
		if _, err := c.ParseInternalJSON(ev.Record); err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(ev)
		msg := broker.Message{ID: ev.ID, Topic: outbox.Topic("posts"), Data: data}
		ctx := context.Background()
		dispatch := func() {
			t.Helper()
			write, err := e.svc.Dispatch(ctx, []broker.Message{msg})
			if err != nil {
				t.Fatal(err)
			}
			if write == nil {
				t.Fatal("an event an endpoint asks for has nothing to write")
			}
			if err := e.db.Write(ctx, write); err != nil {
				t.Fatal(err)
			}
		}
		dispatch()
		dispatch()
		if n := e.pendingJobs(); n != 1 {
			t.Fatalf("%d delivery jobs after a redelivery, want 1", n)
		}
		// Deliver it, then have the broker deliver the event once more: a
		// job runs but sends nothing.
		if err := e.jobs.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			e.jobs.Stop(sctx)
		}()
		waitFor(t, "the delivery", func() bool { return len(e.jobsIn(jobs.StateCompleted)) == 1 })
		dispatch()
		waitFor(t, "the second job", func() bool { return len(e.jobsIn(jobs.StateCompleted)) == 2 })
		if r.count() != 1 || len(e.deliveries(ep.ID)) != 1 {
			t.Errorf("receiver got %d requests, %d logged; want 1", r.count(), len(e.deliveries(ep.ID)))
		}
	})
}

// TestDisableAfterFailures: an endpoint that always fails is disabled after
// DisableAfter attempts in a row, with an audit entry; its job ends dead.
func TestDisableAfterFailures(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, envOptions{allow: loopback, start: true, disableAfter: 3, maxAttempts: 10})
		r := newReceiver(t, always(http.StatusInternalServerError))
		ep := e.create(r.URL, EventFilter{Collection: "posts", Ops: []string{"*"}})
		e.write(context.Background(), "posts", `{"title": "x"}`)
		waitFor(t, "the job to die", func() bool { return len(e.jobsIn(jobs.StateDead)) == 1 })
		got := e.endpoint(ep.ID)
		if got.Enabled || got.DisabledReason != "failures" || got.Failures != 3 {
			t.Errorf("endpoint %+v", got)
		}
		if n := len(e.deliveries(ep.ID)); n != 3 || r.count() != 3 {
			t.Errorf("%d attempts logged, %d received; want 3", n, r.count())
		}
		if n := e.auditCount("webhook.disabled", ep.ID); n != 1 {
			t.Errorf("%d audit entries", n)
		}
		if n := value(e.svc.m.disabled.WithLabelValues("failures")); n != 1 {
			t.Errorf("disabled metric %v", n)
		}
		if n := value(e.svc.m.deliveries.WithLabelValues("failure", "5xx")); n != 3 {
			t.Errorf("failed deliveries metric %v", n)
		}
		// Disabled: later events are not delivered.
		e.write(context.Background(), "posts", `{"title": "y"}`)
		time.Sleep(300 * time.Millisecond)
		if r.count() != 3 {
			t.Errorf("a disabled endpoint received %d requests", r.count())
		}
		// Enabling it again resets the count.
		on := true
		up, err := e.svc.Update(context.Background(), ep.ID, UpdateParams{Enabled: &on})
		if err != nil {
			t.Fatal(err)
		}
		if !up.Enabled || up.Failures != 0 || up.DisabledReason != "" {
			t.Errorf("re-enabled endpoint %+v", up)
		}
	})
}

// TestGone: a 410 disables the endpoint at once, without retries.
func TestGone(t *testing.T) {
	forEngine(t, func(t *testing.T, engine string) {
		e := newEnv(t, engine, envOptions{allow: loopback, start: true})
		r := newReceiver(t, always(http.StatusGone))
		ep := e.create(r.URL, EventFilter{Collection: "posts", Ops: []string{"create"}})
		e.write(context.Background(), "posts", `{"title": "x"}`)
		waitFor(t, "the job to die", func() bool { return len(e.jobsIn(jobs.StateDead)) == 1 })
		got := e.endpoint(ep.ID)
		if got.Enabled || got.DisabledReason != "gone" {
			t.Errorf("endpoint %+v", got)
		}
		if r.count() != 1 {
			t.Errorf("%d requests, want 1", r.count())
		}
		if n := e.auditCount("webhook.disabled", ep.ID); n != 1 {
			t.Errorf("%d audit entries", n)
		}
	})
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
