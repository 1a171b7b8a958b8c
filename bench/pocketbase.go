package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
)

// pbBatch is how many creates go in one request to PocketBase's batch API
// while loading.
const pbBatch = 100

// pocketbaseTarget is PocketBase built from its Go module (cmd/pocketbase)
// on its default settings.
func pocketbaseTarget() *target {
	filter := url.QueryEscape("(published=true && views>=500)")
	return &target{name: "pocketbase", build: "bench/cmd/pocketbase", health: "/api/health",
		data:  func(_ context.Context, dir string) ([]string, error) { return []string{"--dir", dir}, nil },
		serve: func(addr string) []string { return []string{"serve", "--http", addr} },
		setup: func(ctx context.Context, bin string, data []string) error {
			args := append([]string{"superuser", "upsert", adminEmail, adminPassword}, data...)
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Env = childEnv()
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("pocketbase superuser upsert: %w: %s", err, out)
			}
			return nil
		},
		prepare: pbPrepare,
		dialect: dialect{
			records: func(c string) string { return "/api/collections/" + c + "/records" },
			list:    "?filter=" + filter + "&sort=-views&perPage=50&skipTotal=1",
			expand:  "?filter=" + filter + "&sort=-views&perPage=50&skipTotal=1&expand=author",
		},
		load: pbLoad,
		loadHow: fmt.Sprintf("its batch API (POST /api/batch, %d creates a request, 4 at a time), "+
			"enabled for the load and then set back to the defaults", pbBatch),
		members: pbMembers,
		signIn:  pbSignIn,
		membersHow: "members created through the records API and signed in at auth-with-password, 4 at a time; " +
			"member_posts through the batch API, as the load",
	}
}

// pbPrepare signs in as the superuser, replaces the default users auth
// collection with a base collection shaped like the other targets', and
// creates posts with the same index and rules as on Strata: users may be
// viewed by anyone (so that an anonymous expand gets the authors), posts
// read, written and deleted by anyone.
func pbPrepare(ctx context.Context, in *instance) error {
	c := newClient(1)
	var tok struct{ Token string }
	body := fmt.Appendf(nil, `{"identity":%q,"password":%q}`, adminEmail, adminPassword)
	if err := in.call(ctx, c, http.MethodPost, "/api/collections/_superusers/auth-with-password", body, &tok); err != nil {
		return err
	}
	in.auth = tok.Token
	if err := in.call(ctx, c, http.MethodDelete, "/api/collections/users", nil, nil); err != nil {
		return err
	}
	autodates := `{"name":"created","type":"autodate","onCreate":true},{"name":"updated","type":"autodate","onCreate":true,"onUpdate":true}`
	var users struct{ ID string }
	err := in.call(ctx, c, http.MethodPost, "/api/collections", []byte(`{"name":"users","type":"base","fields":[`+
		`{"name":"name","type":"text","required":true},{"name":"email","type":"email"},`+autodates+`],"viewRule":""}`), &users)
	if err != nil {
		return err
	}
	posts := `{"name":"posts","type":"base","fields":[{"name":"title","type":"text","required":true},{"name":"views","type":"number"},` +
		`{"name":"published","type":"bool"},{"name":"author","type":"relation","collectionId":"` + users.ID + `","maxSelect":1},` +
		`{"name":"body","type":"text"},` + autodates + `],` +
		"\"indexes\":[\"CREATE INDEX `idx_posts_published_views` ON `posts` (`published`, `views`)\"]," +
		`"listRule":"","viewRule":"","createRule":"","updateRule":"","deleteRule":""}`
	return in.call(ctx, c, http.MethodPost, "/api/collections", []byte(posts), nil)
}

// pbMembers is strataMembers on PocketBase: members is an auth collection
// anyone may create records in (createRule "") and each member may view
// itself in, member_posts has the owner-only rules and the same index.
func pbMembers(ctx context.Context, in *instance, d *dataset) ([]member, error) {
	c := newClient(4)
	defer c.CloseIdleConnections()
	var members struct{ ID string }
	err := in.call(ctx, c, http.MethodPost, "/api/collections", []byte(`{"name":"members","type":"auth",`+
		`"fields":[{"name":"name","type":"text","required":true}],"createRule":"","viewRule":"`+selfRule+`"}`), &members)
	if err != nil {
		return nil, err
	}
	autodates := `{"name":"created","type":"autodate","onCreate":true},{"name":"updated","type":"autodate","onCreate":true,"onUpdate":true}`
	posts := `{"name":"member_posts","type":"base","fields":[{"name":"title","type":"text","required":true},{"name":"views","type":"number"},` +
		`{"name":"published","type":"bool"},{"name":"author","type":"relation","collectionId":"` + members.ID + `","maxSelect":1},` +
		`{"name":"body","type":"text"},` + autodates + `],` +
		"\"indexes\":[\"CREATE INDEX `idx_member_posts_owner` ON `member_posts` (`author`, `published`, `views`)\"]," +
		`"listRule":"` + ownerRule + `","viewRule":"` + ownerRule + `","createRule":"` + ownerRule +
		`","updateRule":"` + ownerRule + `","deleteRule":"` + ownerRule + `"}`
	if err := in.call(ctx, c, http.MethodPost, "/api/collections", []byte(posts), nil); err != nil {
		return nil, err
	}
	ms := make([]member, len(d.members))
	err = parallel(ctx, 4, len(ms), func(ctx context.Context, i int) error {
		var rec struct{ ID string }
		body := d.memberJSON(i, map[string]any{"passwordConfirm": memberPassword})
		if err := in.callAs(ctx, c, "", http.MethodPost, in.records("members"), body, &rec); err != nil {
			return err
		}
		ms[i].id = rec.ID
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create members: %w", err)
	}
	var ids []string
	err = pbWithBatch(ctx, in, c, func() error {
		var err error
		ids, err = pbCreateBatches(ctx, in, c, "member_posts", d.memberPostBodies(memberIDs(ms)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load member_posts: %w", err)
	}
	ownPosts(ms, ids)
	if err := pbSignIn(ctx, in, d, ms); err != nil {
		return nil, err
	}
	return ms, nil
}

// pbSignIn signs every member in at auth-with-password, 4 at a time.
func pbSignIn(ctx context.Context, in *instance, d *dataset, ms []member) error {
	c := newClient(4)
	defer c.CloseIdleConnections()
	err := parallel(ctx, 4, len(ms), func(ctx context.Context, i int) error {
		var tok struct{ Token string }
		body := fmt.Appendf(nil, `{"identity":%q,"password":%q}`, d.members[i].Email, memberPassword)
		if err := in.callAs(ctx, c, "", http.MethodPost, "/api/collections/members/auth-with-password", body, &tok); err != nil {
			return err
		}
		ms[i].auth = tok.Token
		return nil
	})
	if err != nil {
		return fmt.Errorf("sign members in: %w", err)
	}
	return nil
}

// pbLoad loads the data set through the batch API.
func pbLoad(ctx context.Context, in *instance, d *dataset, _ int) (users, posts []string, err error) {
	c := newClient(4)
	defer c.CloseIdleConnections()
	err = pbWithBatch(ctx, in, c, func() error {
		if users, err = pbCreateBatches(ctx, in, c, "users", d.userBodies()); err != nil {
			return fmt.Errorf("load users: %w", err)
		}
		if posts, err = pbCreateBatches(ctx, in, c, "posts", d.postBodies(users)); err != nil {
			return fmt.Errorf("load posts: %w", err)
		}
		return nil
	})
	return users, posts, err
}

// pbWithBatch runs load with the batch API on, which is off by default,
// and puts its settings back after.
func pbWithBatch(ctx context.Context, in *instance, c *http.Client, load func() error) (err error) {
	var settings struct{ Batch json.RawMessage }
	if err := in.call(ctx, c, http.MethodGet, "/api/settings", nil, &settings); err != nil {
		return err
	}
	on := fmt.Appendf(nil, `{"batch":{"enabled":true,"maxRequests":%d,"timeout":30}}`, pbBatch)
	if err := in.call(ctx, c, http.MethodPatch, "/api/settings", on, nil); err != nil {
		return err
	}
	defer func() {
		back := []byte(`{"batch":` + string(settings.Batch) + `}`)
		if e := in.call(ctx, c, http.MethodPatch, "/api/settings", back, nil); e != nil && err == nil {
			err = fmt.Errorf("put back batch settings: %w", e)
		}
	}()
	return load()
}

// pbCreateBatches creates one record per body, pbBatch to a request and 4
// requests at a time, and returns the ids in the order of bodies.
func pbCreateBatches(ctx context.Context, in *instance, c *http.Client, collection string, bodies [][]byte) ([]string, error) {
	ids := make([]string, len(bodies))
	n := (len(bodies) + pbBatch - 1) / pbBatch
	return ids, parallel(ctx, 4, n, func(ctx context.Context, b int) error {
		lo, hi := b*pbBatch, min((b+1)*pbBatch, len(bodies))
		type request struct {
			Method string          `json:"method"`
			URL    string          `json:"url"`
			Body   json.RawMessage `json:"body"`
		}
		var batch struct {
			Requests []request `json:"requests"`
		}
		for _, body := range bodies[lo:hi] {
			batch.Requests = append(batch.Requests, request{http.MethodPost, in.records(collection), body})
		}
		req, _ := json.Marshal(batch)
		var res []struct {
			Status int
			Body   struct{ ID string }
		}
		if err := in.call(ctx, c, http.MethodPost, "/api/batch", req, &res); err != nil {
			return err
		}
		if len(res) != hi-lo {
			return fmt.Errorf("batch of %d creates answered %d results", hi-lo, len(res))
		}
		for i, r := range res {
			if r.Status/100 != 2 || r.Body.ID == "" {
				return fmt.Errorf("batch create answered status %d", r.Status)
			}
			ids[lo+i] = r.Body.ID
		}
		return nil
	})
}
