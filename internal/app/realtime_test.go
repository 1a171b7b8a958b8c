package app

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/strata-dev/strata/internal/broker/nats/natstest"
	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/storetest"
)

// serving is a testApp served on a loopback listener, with the broker,
// relay and realtime hub running.
type serving struct {
	*testApp
	url string
}

func serve(t testing.TB, engine string, edit ...func(*config.Config)) *serving {
	t.Helper()
	return serveWith(t, engine, nil, edit...)
}

// serveWith is serve with prepare run on the app before it serves.
func serveWith(t testing.TB, engine string, prepare func(*App), edit ...func(*config.Config)) *serving {
	t.Helper()
	ta := newTestApp(t, engine, edit...)
	if prepare != nil {
		prepare(ta.app)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ta.app.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	s := &serving{testApp: ta, url: "http://" + ln.Addr().String()}
	deadline := time.Now().Add(10 * time.Second)
	for ta.app.cfg.HasRole("api") && ta.app.hub.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("realtime did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	ID, Event string
	Data      map[string]any
}

// sse opens a stream; events arrive on the returned channel, which closes
// when the stream ends.
func (s *serving) sse(t testing.TB, token, query string, headers ...string) (<-chan sseEvent, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/api/v1/realtime?"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); res.Body.Close() })
	ch := make(chan sseEvent, 100)
	if res.StatusCode != 200 {
		close(ch)
		return ch, res
	}
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				json.Unmarshal([]byte(line[6:]), &ev.Data)
			}
		}
	}()
	first := next(t, ch)
	if first.Event != "connected" {
		t.Fatalf("first event %+v, want connected", first)
	}
	return ch, res
}

func next(t testing.TB, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sseEvent{}
}

// none checks that no event arrives for a while.
func none(t *testing.T, ch <-chan sseEvent) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("unexpected event %+v", ev)
		}
	case <-time.After(300 * time.Millisecond):
	}
}

// without returns list without the elements equal to x.
func without(list []string, x string) []string {
	var out []string
	for _, v := range list {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

func record(ev sseEvent) map[string]any {
	r, _ := ev.Data["record"].(map[string]any)
	return r
}

// TestRealtimeSSE: a subscriber sees create, update and delete as the API
// would return the record, without hidden fields; a filter and a record
// subscription narrow what it sees.
func TestRealtimeSSE(t *testing.T) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			s := serve(t, engine)
			s.do("POST", "/api/v1/collections", `{"name":"posts","fields":[{"name":"title","type":"text"},{"name":"secret","type":"text","hidden":true}]}`, 201, nil)
			all, _ := s.sse(t, s.token, "subscribe=posts")
			filtered, _ := s.sse(t, s.token, "subscribe=posts&filter="+url.QueryEscape(`title ~ "news"`))

			var rec struct{ ID string }
			s.do("POST", "/api/v1/collections/posts/records", `{"title":"hello","secret":"s3"}`, 201, &rec)
			// Events go out after their commit: wait for this one before
			// subscribing to the record alone.
			var got []string
			check := func(ev sseEvent) {
				got = append(got, ev.Event+":"+record(ev)["title"].(string))
				if ev.ID == "" || ev.Data["collection"] != "posts" || ev.Data["op"] != ev.Event {
					t.Errorf("event %+v", ev)
				}
				if _, ok := record(ev)["secret"]; ok {
					t.Errorf("hidden field sent: %+v", ev)
				}
			}
			check(next(t, all))
			one, _ := s.sse(t, s.token, "subscribe=posts/"+rec.ID)
			s.do("PATCH", "/api/v1/collections/posts/records/"+rec.ID, `{"title":"big news"}`, 200, nil)
			var other struct{ ID string }
			s.do("POST", "/api/v1/collections/posts/records", `{"title":"other news"}`, 201, &other)
			s.do("DELETE", "/api/v1/collections/posts/records/"+rec.ID, "", 204, nil)

			for range 3 {
				check(next(t, all))
			}
			// The events of one record keep their order; those of
			// different records may interleave.
			if mine := without(got, "create:other news"); strings.Join(mine, ",") != "create:hello,update:big news,delete:big news" || len(got) != 4 {
				t.Errorf("events %v", got)
			}
			var fgot []string
			for range 3 {
				ev := next(t, filtered)
				fgot = append(fgot, ev.Event+":"+record(ev)["title"].(string))
			}
			if mine := without(fgot, "create:other news"); strings.Join(mine, ",") != "update:big news,delete:big news" || len(fgot) != 3 {
				t.Errorf("filtered events %v", fgot)
			}
			none(t, filtered)
			for _, w := range []string{"update", "delete"} {
				if ev := next(t, one); ev.Event != w || record(ev)["id"] != rec.ID {
					t.Errorf("record subscription: %+v, want %s of %s", ev, w, rec.ID)
				}
			}
			none(t, one)
		})
	}
}

// TestRealtimeRules: events pass the subscriber's view rule, checked with
// its identity; a collection without a view rule is for superusers only.
func TestRealtimeRules(t *testing.T) {
	s := serve(t, "sqlite")
	s.do("POST", "/api/v1/collections", `{"name":"members","type":"auth","rules":{"create":""}}`, 201, nil)
	s.do("POST", "/api/v1/collections", `{"name":"notes","fields":[{"name":"owner","type":"text"},{"name":"body","type":"text"}],
		"rules":{"view":"owner = @request.auth.id","create":"@request.auth.id != ''"}}`, 201, nil)
	s.do("POST", "/api/v1/collections", `{"name":"locked","fields":[{"name":"x","type":"text"}]}`, 201, nil)
	login := func(email string) (string, string) {
		var m struct{ ID string }
		s.do("POST", "/api/v1/auth/members/register", `{"email":"`+email+`","password":"a long password"}`, 201, &m, "Authorization", "")
		var l struct {
			AccessToken string `json:"access_token"`
		}
		s.do("POST", "/api/v1/auth/members/login", `{"email":"`+email+`","password":"a long password"}`, 200, &l)
		return m.ID, l.AccessToken
	}
	adaID, ada := login("ada@example.com")
	bobID, bob := login("bob@example.com")
	// The token may come as access_token, as browsers' EventSource needs.
	adaEvents, _ := s.sse(t, "", "subscribe=notes&access_token="+url.QueryEscape(ada))
	s.do("POST", "/api/v1/collections/notes/records", `{"owner":"`+bobID+`","body":"bob's"}`, 201, nil, "Authorization", "Bearer "+bob)
	s.do("POST", "/api/v1/collections/notes/records", `{"owner":"`+adaID+`","body":"ada's"}`, 201, nil, "Authorization", "Bearer "+ada)
	if ev := next(t, adaEvents); record(ev)["body"] != "ada's" {
		t.Errorf("ada sees %+v", ev)
	}
	none(t, adaEvents)

	_, res := s.sse(t, bob, "subscribe=locked")
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("subscribe to a collection without a view rule: %d, want 403", res.StatusCode)
	}
	_, res = s.sse(t, "", "subscribe=nothere")
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("subscribe to an unknown collection: %d, want 404", res.StatusCode)
	}
	for _, q := range []string{"", "subscribe=a/b/c", "subscribe=notes&filter=" + url.QueryEscape("body ="), "subscribe=notes&last_event_id=x"} {
		_, res = s.sse(t, s.token, q)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusBadRequest || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%q: %d %s, want a 400 problem", q, res.StatusCode, body)
		}
	}
}

// TestRealtimeResume: a client that reconnects with the id of the last
// event it saw gets the events it missed, then live ones, none twice.
func TestRealtimeResume(t *testing.T) {
	s := serve(t, "sqlite")
	s.do("POST", "/api/v1/collections", `{"name":"posts","fields":[{"name":"title","type":"text"}]}`, 201, nil)
	// observer sees every event live, to know when the hub has them.
	observer, _ := s.sse(t, s.token, "subscribe=posts")
	s.do("POST", "/api/v1/collections/posts/records", `{"title":"one"}`, 201, nil)
	seen := next(t, observer)
	for _, title := range []string{"two", "three"} {
		s.do("POST", "/api/v1/collections/posts/records", `{"title":"`+title+`"}`, 201, nil)
		next(t, observer)
	}
	resumed, _ := s.sse(t, s.token, "subscribe=posts", "Last-Event-ID", seen.ID)
	s.do("POST", "/api/v1/collections/posts/records", `{"title":"four"}`, 201, nil)
	for _, w := range []string{"two", "three", "four"} {
		if ev := next(t, resumed); record(ev)["title"] != w {
			t.Fatalf("resumed stream: %v, want %s", record(ev)["title"], w)
		}
	}
	none(t, resumed)
}

// TestRealtimeWebSocket: the same subscriptions over a WebSocket.
func TestRealtimeWebSocket(t *testing.T) {
	s := serve(t, "sqlite")
	s.do("POST", "/api/v1/collections", `{"name":"posts","fields":[{"name":"title","type":"text"}]}`, 201, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/api/v1/realtime/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + s.token}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	read := func() map[string]any {
		t.Helper()
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(data, &m)
		return m
	}
	if m := read(); m["type"] != "connected" {
		t.Fatalf("first message %v", m)
	}
	conn.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","subscribe":["nothere"]}`))
	if m := read(); m["type"] != "error" || m["problem"].(map[string]any)["status"] != float64(404) {
		t.Errorf("bad subscription: %v", m)
	}
	conn.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","subscribe":["posts"],"filter":"title != 'skip'"}`))
	if m := read(); m["type"] != "subscribed" {
		t.Fatalf("subscribe: %v", m)
	}
	s.do("POST", "/api/v1/collections/posts/records", `{"title":"skip"}`, 201, nil)
	s.do("POST", "/api/v1/collections/posts/records", `{"title":"hello"}`, 201, nil)
	m := read()
	if m["type"] != "event" || m["op"] != "create" || m["record"].(map[string]any)["title"] != "hello" || m["id"] == "" {
		t.Errorf("event: %v", m)
	}
}

// TestRealtimeAcrossNodes: two nodes share a PostgreSQL database and a NATS
// server; a subscriber on one sees the writes made on the other, once.
func TestRealtimeAcrossNodes(t *testing.T) {
	natsURL := natstest.Env(t, natstest.EnvURL)
	if len(storetest.Engines(t)) < 2 {
		t.Skip("needs PostgreSQL")
	}
	dbURL := storetest.Schema(t)
	shared := func(c *config.Config) {
		c.DB, c.NATSURL = dbURL, natsURL
	}
	a := serve(t, "sqlite", shared)
	b := serve(t, "sqlite", shared)
	a.do("POST", "/api/v1/collections", `{"name":"posts","fields":[{"name":"title","type":"text"}]}`, 201, nil)
	onB, _ := b.sse(t, b.token, "subscribe=posts")
	onA, _ := a.sse(t, a.token, "subscribe=posts")
	for i, n := range []*serving{a, b, a} {
		n.do("POST", "/api/v1/collections/posts/records", `{"title":"w`+string(rune('0'+i))+`"}`, 201, nil)
	}
	for _, ch := range []<-chan sseEvent{onA, onB} {
		seen := map[string]bool{}
		for range 3 {
			ev := next(t, ch)
			title := record(ev)["title"].(string)
			if seen[title] {
				t.Errorf("%s delivered twice", title)
			}
			seen[title] = true
		}
		none(t, ch)
	}
}
