package rest_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// listAll pages through a list with the given query and page size and
// returns every id in order, failing on a repeated id.
func (e *testEnv) listAll(collection, query string, limit int) []string {
	e.t.Helper()
	var all []string
	seen := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		if page > 1000 {
			e.t.Fatal("pagination does not end")
		}
		path := fmt.Sprintf("/api/v1/collections/%s/records?limit=%d&%s", collection, limit, query)
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		m := e.request("GET", path, nil).status(200).json()
		for _, it := range m["items"].([]any) {
			id := it.(map[string]any)["id"].(string)
			if seen[id] {
				e.t.Fatalf("id %s returned twice", id)
			}
			seen[id] = true
			all = append(all, id)
		}
		next, _ := m["next_cursor"].(string)
		if next == "" {
			return all
		}
		cursor = next
	}
}

func TestListFilterSortPaginate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		withBlog(e)
		ada := e.mustCreate("users", map[string]any{"name": "Ada"})
		type post struct {
			id    string
			title string
			views any
			pub   bool
		}
		var posts []post
		for i := range 23 {
			var views any = float64(i % 5)
			if i%7 == 0 {
				views = nil
			}
			body := map[string]any{"title": fmt.Sprintf("Post %02d", i), "views": views, "published": i%2 == 0,
				"meta": map[string]any{"rank": 23 - i, "tag": fmt.Sprint("t", i%3)}, "tags": []string{[]string{"go", "sql", "web"}[i%3]}}
			if i%4 == 0 {
				body["author"] = ada["id"]
			}
			r := e.mustCreate("posts", body)
			posts = append(posts, post{id: r["id"].(string), title: body["title"].(string), views: views, pub: i%2 == 0})
		}
		byTitle := func(p []post) []string {
			var out []string
			for _, x := range p {
				out = append(out, x.id)
			}
			return out
		}
		all := byTitle(posts)

		// Default order is the id, which is creation order.
		if got := e.listAll("posts", "", 5); !slices.Equal(got, all) {
			t.Errorf("default order:\n got %v\nwant %v", got, all)
		}
		// Sort by title descending.
		rev := slices.Clone(all)
		slices.Reverse(rev)
		if got := e.listAll("posts", "sort=-title", 4); !slices.Equal(got, rev) {
			t.Errorf("sort=-title:\n got %v\nwant %v", got, rev)
		}
		// Nullable sort key with ties, both directions: every record once.
		for _, s := range []string{"views,title", "-views,title", "-published,views,-created", "meta.rank", "-meta.tag,title"} {
			got := e.listAll("posts", "sort="+url.QueryEscape(s), 3)
			if len(got) != len(all) {
				t.Errorf("sort=%s returned %d records, want %d", s, len(got), len(all))
			}
			one := e.listAll("posts", "sort="+url.QueryEscape(s), 100)
			if !slices.Equal(got, one) {
				t.Errorf("sort=%s: paged order differs from one page:\n%v\n%v", s, got, one)
			}
		}
		// meta.rank descends as i ascends.
		if got := e.listAll("posts", "sort=meta.rank", 6); !slices.Equal(got, rev) {
			t.Errorf("sort=meta.rank:\n got %v\nwant %v", got, rev)
		}

		filters := []struct {
			filter string
			want   func(i int) bool
		}{
			{`published = true`, func(i int) bool { return i%2 == 0 }},
			{`views >= 3`, func(i int) bool { return i%7 != 0 && i%5 >= 3 }},
			{`views = null`, func(i int) bool { return i%7 == 0 }},
			{`views != null && views < 2`, func(i int) bool { return i%7 != 0 && i%5 < 2 }},
			{`title ~ "post 1"`, func(i int) bool { return i >= 10 && i < 20 }},
			{`title !~ "1"`, func(i int) bool { return i != 1 && !(i >= 10 && i < 20) && i != 21 }},
			{`(published = true || views = 4) && !(title = "Post 00")`, func(i int) bool { return (i%2 == 0 || (i%7 != 0 && i%5 == 4)) && i != 0 }},
			{`views in (1, 2)`, func(i int) bool { return i%7 != 0 && (i%5 == 1 || i%5 == 2) }},
			{`tags ~ "sql"`, func(i int) bool { return i%3 == 1 }},
			{`meta.tag = "t2"`, func(i int) bool { return i%3 == 2 }},
			{`meta.rank > 20`, func(i int) bool { return 23-i > 20 }},
			{`author.name = "Ada"`, func(i int) bool { return i%4 == 0 }},
			{`author = null`, func(i int) bool { return i%4 != 0 }},
			{`created > "2000-01-01T00:00:00Z"`, func(i int) bool { return true }},
		}
		for _, f := range filters {
			var want []string
			for i, p := range posts {
				if f.want(i) {
					want = append(want, p.id)
				}
			}
			got := e.listAll("posts", "filter="+url.QueryEscape(f.filter), 4)
			if !slices.Equal(got, want) {
				t.Errorf("filter %s:\n got %v\nwant %v", f.filter, got, want)
			}
			total := e.request("GET", "/api/v1/collections/posts/records?limit=1&total=true&filter="+url.QueryEscape(f.filter), nil).status(200).json()["total"]
			if total != float64(len(want)) {
				t.Errorf("filter %s: total %v, want %d", f.filter, total, len(want))
			}
		}

		// A cursor stays valid while records are inserted and deleted, and
		// belongs to its own filter and sort.
		first := e.request("GET", "/api/v1/collections/posts/records?limit=5&sort=title", nil).status(200).json()
		cursor := first["next_cursor"].(string)
		e.request("DELETE", "/api/v1/collections/posts/records/"+posts[5].id, nil).status(204)
		e.mustCreate("posts", map[string]any{"title": "Post 00a"}) // sorts before the cursor
		e.mustCreate("posts", map[string]any{"title": "Post 99"})  // after it
		rest := e.request("GET", "/api/v1/collections/posts/records?limit=100&sort=title&cursor="+url.QueryEscape(cursor), nil).status(200).ids()
		if len(rest) != 23-5-1+1 || rest[0] != posts[6].id {
			t.Errorf("after changes, rest of list has %d items starting %v", len(rest), rest[:1])
		}
		e.request("GET", "/api/v1/collections/posts/records?limit=5&sort=-title&cursor="+url.QueryEscape(cursor), nil).problem(400)
		tampered := []byte(cursor)
		tampered[3] ^= 1
		e.request("GET", "/api/v1/collections/posts/records?sort=title&cursor="+url.QueryEscape(string(tampered)), nil).problem(400)
	})
}

func TestDocumentCollection(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *testEnv) {
		e.request("POST", "/api/v1/collections", map[string]any{"name": "events", "type": "document",
			"indexes": []any{map[string]any{"fields": []string{"created"}}}}).status(201)
		a := e.mustCreate("events", map[string]any{"kind": "click", "a": map[string]any{"b": map[string]any{"c": 3}}, "tags": []string{"x", "y"}})
		b := e.mustCreate("events", map[string]any{"kind": "view", "a": map[string]any{"b": map[string]any{"c": 10}}})
		c := e.mustCreate("events", map[string]any{"kind": "click", "n": nil})
		big := e.request("POST", "/api/v1/collections/events/records", `{"big": 12345678901234567}`).status(201)
		got := e.request("GET", "/api/v1/collections/events/records/"+big.json()["id"].(string), nil).status(200)
		if !strings.Contains(got.Body.String(), `"big":12345678901234567`) {
			t.Errorf("a large integer lost precision: %s", got.Body)
		}
		e.request("DELETE", "/api/v1/collections/events/records/"+big.json()["id"].(string), nil).status(204)
		check := func(filter, sort string, want ...map[string]any) {
			t.Helper()
			var ids []string
			for _, w := range want {
				ids = append(ids, w["id"].(string))
			}
			got := e.listAll("events", "filter="+url.QueryEscape(filter)+"&sort="+url.QueryEscape(sort), 2)
			if !slices.Equal(got, ids) {
				t.Errorf("filter %q sort %q:\n got %v\nwant %v", filter, sort, got, ids)
			}
		}
		check(`kind = "click"`, "", a, c)
		check(`a.b.c > 5`, "", b)
		check(`a.b.c = null`, "", c)
		check(`tags ~ "y"`, "", a)
		check(``, "-a.b.c", b, a, c)
		check(`kind ~ "LI"`, "a.b.c", c, a)

		// PATCH merges (RFC 7386): null removes a key; PUT replaces.
		p := e.request("PATCH", "/api/v1/collections/events/records/"+a["id"].(string), map[string]any{"tags": nil, "extra": true}).status(200).json()
		if _, ok := p["tags"]; ok || p["extra"] != true || p["kind"] != "click" {
			t.Errorf("merge patch: %v", p)
		}
		r := e.request("PUT", "/api/v1/collections/events/records/"+a["id"].(string), map[string]any{"only": 1}).status(200).json()
		if _, ok := r["kind"]; ok || r["only"] != float64(1) {
			t.Errorf("replace: %v", r)
		}
		e.request("POST", "/api/v1/collections/events/records", `{"created": "x"}`).problem(400)
	})
}

// Pages are written into pooled buffers: lists of different sizes served
// at the same time over real connections must each get their own page,
// whole and byte for byte what the same list answers alone.
func TestListPagesConcurrent(t *testing.T) {
	e := newEnv(t, "sqlite")
	withBlog(e)
	for i := range 60 {
		e.mustCreate("posts", map[string]any{"title": fmt.Sprintf("Post %02d %s", i, strings.Repeat("x", 3*i)), "published": i%3 != 0})
	}
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	get := func(path string) ([]byte, error) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		res, err := srv.Client().Do(req)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		if res.StatusCode != 200 {
			return nil, fmt.Errorf("%s: %s", path, res.Status)
		}
		return io.ReadAll(res.Body)
	}
	paths := []string{
		"/api/v1/collections/posts/records?limit=1",
		"/api/v1/collections/posts/records?limit=7&sort=-title",
		"/api/v1/collections/posts/records?limit=60",
		"/api/v1/collections/posts/records?limit=30&filter=" + url.QueryEscape("published = true") + "&total=true",
	}
	want := map[string][]byte{}
	for _, p := range paths {
		b, err := get(p)
		if err != nil {
			t.Fatal(err)
		}
		want[p] = b
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				p := paths[(g+i)%len(paths)]
				b, err := get(p)
				if err == nil && !bytes.Equal(b, want[p]) {
					err = fmt.Errorf("%s answered another page:\n got %.200s\nwant %.200s", p, b, want[p])
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
