package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
)

// The superuser every target is used as.
const (
	adminEmail    = "bench@example.com"
	adminPassword = "bench-password-1234"
	floorToken    = "bench-floor-token"
)

// target is one server under test: how to build, start, sign in to, load
// and call it.
type target struct {
	name     string
	build    string // the package to build, relative to the repository root
	src      string // the repository root, when not this one (strata-baseline)
	viewOnly bool   // only the view scenario applies (the ceiling)
	health   string // answers 200 once the server is ready
	loadHow  string // how the data is loaded, for the results
	// data returns the flags that give a fresh instance its own empty data
	// set in dir.
	data func(ctx context.Context, dir string) ([]string, error)
	// serve returns the arguments that serve on addr.
	serve func(addr string) []string
	// profile, when the target can, returns the arguments that serve Go's
	// profiles at /debug/pprof/ on addr.
	profile func(addr string) []string
	// setup runs the binary before the server starts (a superuser).
	setup func(ctx context.Context, bin string, data []string) error
	// prepare signs in and creates the schema on a ready instance.
	prepare func(ctx context.Context, in *instance) error
	// load creates the data set and returns the ids of the users and posts.
	load func(ctx context.Context, in *instance, d *dataset, conns int) (users, posts []string, err error)
	// members creates the members auth collection and member_posts under
	// owner-only rules, registers d.members, loads member_posts and signs
	// each member in; only when a scenario runs as asUser.
	members    func(ctx context.Context, in *instance, d *dataset) ([]member, error)
	membersHow string
	// signIn signs the members in again, for fresh tokens: a member's
	// token may expire (Strata's last 15 minutes) before the scenario
	// that uses it runs.
	signIn func(ctx context.Context, in *instance, d *dataset, ms []member) error
	// cannot says, for each caller whose access the target cannot
	// express, why; its scenarios do not run there.
	cannot map[caller]string
	// cache, when the target has a cache of its own, turns it on for
	// posts (on) or off again, for the scenarios that measure it.
	cache func(ctx context.Context, in *instance, on bool) error
	dialect

	bin     string // the built binary
	version string
}

// targetNames lists every target in the order they run.
var targetNames = []string{"ceiling", "floor", "strata-sqlite", "strata-postgres", "pocketbase"}

// baselineName is the target of Config.Baseline.
const baselineName = "strata-baseline"

// newTarget returns the target called name; pg gives strata-postgres its
// databases.
func newTarget(name string, pg *postgres) *target {
	noData := func(context.Context, string) ([]string, error) { return nil, nil }
	switch name {
	case "ceiling":
		return &target{name: name, build: "bench/cmd/ceiling", viewOnly: true, health: "/healthz",
			data:    noData,
			serve:   func(addr string) []string { return []string{"-http", addr} },
			dialect: dialect{records: func(c string) string { return "/api/" + c }},
			load: func(context.Context, *instance, *dataset, int) ([]string, []string, error) {
				return nil, fakeIDs(1000), nil
			},
			loadHow: "nothing to load: every answer is the same record",
		}
	case "floor":
		return &target{name: name, build: "bench/cmd/floor", health: "/healthz",
			data: func(_ context.Context, dir string) ([]string, error) { return []string{"-dir", dir}, nil },
			// Requests on posts without an Authorization header are
			// public; one with a header must have the token.
			serve: func(addr string) []string { return []string{"-http", addr, "-token", floorToken, "-public"} },
			prepare: func(_ context.Context, in *instance) error {
				in.auth = "Bearer " + floorToken
				return nil
			},
			dialect: dialect{
				records: func(c string) string { return "/api/" + c },
				list:    "?min_views=500&limit=50",
				expand:  "?min_views=500&limit=50&expand=author",
			},
			load:    loadEach,
			loadHow: "its HTTP API, one POST per record, 16 at a time",
			cannot: map[caller]string{asUser: "the floor has one static token and no accounts, sign-in or per-record " +
				"ownership; an owner-only rule would take more than the few lines the floor allows itself"},
		}
	case "strata-sqlite", "strata-postgres":
		t := strataTarget(name)
		if name == "strata-postgres" {
			t.data = func(ctx context.Context, dir string) ([]string, error) {
				u, err := pg.createDB(ctx)
				return []string{"--dir", dir, "--db", u}, err
			}
		}
		return t
	case "pocketbase":
		return pocketbaseTarget()
	}
	return nil
}

// strataTarget is Strata on SQLite; strata-postgres changes its data flags.
func strataTarget(name string) *target {
	filter := url.QueryEscape("published = true && views >= 500")
	return &target{name: name, build: "cmd/strata", health: "/readyz",
		data: func(_ context.Context, dir string) ([]string, error) { return []string{"--dir", dir}, nil },
		// PocketBase limits no request by default; neither does Strata here.
		serve: func(addr string) []string {
			return []string{"serve", "--http", addr, "--rate-limit", "off", "--rate-limit-user", "off", "--rate-limit-auth", "off"}
		},
		profile: func(addr string) []string { return []string{"--pprof-http", addr} },
		cache: func(ctx context.Context, in *instance, on bool) error {
			policy := "none"
			if on {
				policy = "cache-aside"
			}
			return in.call(ctx, newClient(1), http.MethodPatch, "/api/v1/collections/posts",
				fmt.Appendf(nil, `{"cache":{"policy":%q}}`, policy), nil)
		},
		setup: func(ctx context.Context, bin string, data []string) error {
			args := append([]string{"superuser", "create", adminEmail, "--password-stdin"}, data...)
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Env = childEnv()
			cmd.Stdin = strings.NewReader(adminPassword + "\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("strata superuser create: %w: %s", err, out)
			}
			return nil
		},
		prepare: func(ctx context.Context, in *instance) error {
			c := newClient(1)
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			body := fmt.Appendf(nil, `{"email":%q,"password":%q}`, adminEmail, adminPassword)
			if err := in.call(ctx, c, http.MethodPost, "/api/v1/admin/login", body, &tok); err != nil {
				return err
			}
			in.auth = "Bearer " + tok.AccessToken
			for _, col := range []string{
				`{"name":"users","type":"base","fields":[{"name":"name","type":"text","required":true},{"name":"email","type":"email"}],` +
					`"rules":{"view":""}}`,
				`{"name":"posts","type":"base","fields":[{"name":"title","type":"text","required":true},{"name":"views","type":"number"},` +
					`{"name":"published","type":"bool"},{"name":"author","type":"relation","collection":"users"},{"name":"body","type":"text"}],` +
					`"indexes":[{"fields":["published","views"]}],"rules":{"list":"","view":"","create":"","update":"","delete":""}}`,
			} {
				if err := in.call(ctx, c, http.MethodPost, "/api/v1/collections", []byte(col), nil); err != nil {
					return err
				}
			}
			return nil
		},
		dialect: dialect{
			records: func(c string) string { return "/api/v1/collections/" + c + "/records" },
			list:    "?filter=" + filter + "&sort=-views&limit=50",
			expand:  "?filter=" + filter + "&sort=-views&limit=50&expand=author",
		},
		load:    loadEach,
		loadHow: "its HTTP API, one POST per record, 16 at a time",
		members: strataMembers,
		signIn:  strataSignIn,
		membersHow: "members registered at /api/v1/auth/members/register and signed in at /login, 4 at a time; " +
			"member_posts through the records API, one POST per record, 16 at a time",
	}
}

// ownerRule is every rule of member_posts, and selfRule the view rule of
// members (a member sees itself, the author its posts expand to): the same
// on Strata and PocketBase.
const (
	ownerRule = "author = @request.auth.id"
	selfRule  = "id = @request.auth.id"
)

// strataMembers creates members (an auth collection anyone may register
// in, each member seeing only itself) and member_posts (posts whose author
// is a member, which only their author may read, write and delete,
// indexed for that), registers the members, loads
// member_posts and signs every member in.
func strataMembers(ctx context.Context, in *instance, d *dataset) ([]member, error) {
	c := newClient(4)
	defer c.CloseIdleConnections()
	for _, col := range []string{
		`{"name":"members","type":"auth","fields":[{"name":"name","type":"text","required":true}],"rules":{"create":"","view":"` + selfRule + `"}}`,
		`{"name":"member_posts","type":"base","fields":[{"name":"title","type":"text","required":true},{"name":"views","type":"number"},` +
			`{"name":"published","type":"bool"},{"name":"author","type":"relation","collection":"members"},{"name":"body","type":"text"}],` +
			`"indexes":[{"fields":["author","published","views"]}],` +
			`"rules":{"list":"` + ownerRule + `","view":"` + ownerRule + `","create":"` + ownerRule +
			`","update":"` + ownerRule + `","delete":"` + ownerRule + `"}}`,
	} {
		if err := in.call(ctx, c, http.MethodPost, "/api/v1/collections", []byte(col), nil); err != nil {
			return nil, err
		}
	}
	ms := make([]member, len(d.members))
	err := parallel(ctx, 4, len(ms), func(ctx context.Context, i int) error {
		var rec struct{ ID string }
		if err := in.callAs(ctx, c, "", http.MethodPost, "/api/v1/auth/members/register", d.memberJSON(i, nil), &rec); err != nil {
			return err
		}
		ms[i].id = rec.ID
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("register members: %w", err)
	}
	ids, err := in.createEach(ctx, "member_posts", d.memberPostBodies(memberIDs(ms)), 16)
	if err != nil {
		return nil, fmt.Errorf("load member_posts: %w", err)
	}
	ownPosts(ms, ids)
	if err := strataSignIn(ctx, in, d, ms); err != nil {
		return nil, err
	}
	return ms, nil
}

// strataSignIn signs every member in at /login, 4 at a time.
func strataSignIn(ctx context.Context, in *instance, d *dataset, ms []member) error {
	c := newClient(4)
	defer c.CloseIdleConnections()
	err := parallel(ctx, 4, len(ms), func(ctx context.Context, i int) error {
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		body := fmt.Appendf(nil, `{"email":%q,"password":%q}`, d.members[i].Email, memberPassword)
		if err := in.callAs(ctx, c, "", http.MethodPost, "/api/v1/auth/members/login", body, &tok); err != nil {
			return err
		}
		ms[i].auth = "Bearer " + tok.AccessToken
		return nil
	})
	if err != nil {
		return fmt.Errorf("sign members in: %w", err)
	}
	return nil
}

func memberIDs(ms []member) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.id
	}
	return ids
}

// loadEach loads the data set with one POST per record, 16 at a time.
func loadEach(ctx context.Context, in *instance, d *dataset, _ int) ([]string, []string, error) {
	users, err := in.createEach(ctx, "users", d.userBodies(), 16)
	if err != nil {
		return nil, nil, fmt.Errorf("load users: %w", err)
	}
	posts, err := in.createEach(ctx, "posts", d.postBodies(users), 16)
	if err != nil {
		return nil, nil, fmt.Errorf("load posts: %w", err)
	}
	return users, posts, nil
}

// fakeIDs are ids for the ceiling, which answers any of them.
func fakeIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%016x", i*7919)
	}
	return ids
}
