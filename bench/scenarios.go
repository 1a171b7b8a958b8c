package bench

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
)

// caller is who sends a request.
type caller int

const (
	// asSuperuser sends the target's superuser credentials (the floor's
	// static token).
	asSuperuser caller = iota
	// asAnonymous sends no Authorization header.
	asAnonymous
	// asUser sends the token of a signed-in member of the members auth
	// collection: each worker is one member, the same in every round.
	asUser
)

// String is the caller's name in the results.
func (c caller) String() string {
	switch c {
	case asAnonymous:
		return "anonymous"
	case asUser:
		return "user"
	}
	return "superuser"
}

// request is one request a worker sends.
type request struct {
	method, path string
	body         []byte
	// as is who sends it.
	as caller
	// keep, when set, is given the body of a 2xx answer.
	keep func(body []byte)
}

// state is what the scenarios of one target share.
type state struct {
	in  *instance
	cpu cpuMeter
	// server are the processes that serve the target: it, and the
	// PostgreSQL the benchmark started for strata-postgres.
	server []int
	users  []string // ids of the loaded users
	posts  []string // ids of the loaded posts
	// members are the signed-in members, when a scenario runs as asUser.
	members []member

	mu      sync.Mutex
	created []string // ids of the posts that create and mixed made

	// The delete scenario takes ids from pool[next] up to pool[end].
	pool      []string
	next, end atomic.Int64
}

// member returns the member whose token worker slot sends, nil when no
// member is signed in.
func (st *state) member(slot int) *member {
	if len(st.members) == 0 {
		return nil
	}
	return &st.members[slot%len(st.members)]
}

// keepCreated remembers the id of a post that a create made, for delete.
func (st *state) keepCreated(body []byte) {
	var rec struct{ ID string }
	if json.Unmarshal(body, &rec) == nil && rec.ID != "" {
		st.mu.Lock()
		st.created = append(st.created, rec.ID)
		st.mu.Unlock()
	}
}

// scenario is one kind of traffic, sent by one caller. A scenario runs on
// every target that can express its caller's access (see target.cannot).
type scenario struct {
	name   string
	caller caller
	what   string
	// next returns a worker's next request; false when there is nothing
	// left to do (delete, once its ids are spent). me is the member whose
	// token the worker sends as asUser, nil when no member is signed in.
	next func(st *state, rng *rand.Rand, me *member) (request, bool)
	// cached runs the scenario with the target's own cache on posts (see
	// target.cache); a target without one does not run it.
	cached bool
}

// hotPosts is how many posts view-cached reads: a working set the cache
// holds whole after the warm-up, as a popular slice of the data would be.
const hotPosts = 1000

// scenarios lists every scenario in the order they run: delete takes the
// posts that create made.
var scenarios = []scenario{
	{name: "view", what: "GET one post by a random id", next: view},
	{name: "view-cached", cached: true,
		what: "view of one of 1,000 posts (a hot set), with the target's cache on posts (Strata: cache-aside, in memory)",
		next: func(st *state, rng *rand.Rand, _ *member) (request, bool) {
			return request{method: "GET", path: st.in.records("posts") + "/" + st.posts[rng.IntN(min(hotPosts, len(st.posts)))]}, true
		}},
	{name: "list", what: "GET 50 posts with published = true && views >= 500, sorted by -views, no total",
		next: func(st *state, _ *rand.Rand, _ *member) (request, bool) {
			return request{method: "GET", path: st.in.records("posts") + st.in.list}, true
		}},
	{name: "expand", what: "list, with each post's author expanded",
		next: func(st *state, _ *rand.Rand, _ *member) (request, bool) {
			return request{method: "GET", path: st.in.records("posts") + st.in.expand}, true
		}},
	{name: "create", what: "POST a new post", next: create},
	{name: "update", what: "PATCH the views of a random post",
		next: func(st *state, rng *rand.Rand, _ *member) (request, bool) {
			id := st.posts[rng.IntN(len(st.posts))]
			body := strconv.AppendInt([]byte(`{"views":`), int64(rng.IntN(1000)), 10)
			return request{method: "PATCH", path: st.in.records("posts") + "/" + id, body: append(body, '}')}, true
		}},
	{name: "delete", what: "DELETE a post made by create or by a setup phase just before (each post once)",
		next: func(st *state, _ *rand.Rand, _ *member) (request, bool) {
			i := st.next.Add(1) - 1
			if i >= st.end.Load() {
				return request{}, false
			}
			return request{method: "DELETE", path: st.in.records("posts") + "/" + st.pool[i]}, true
		}},
	{name: "mixed", what: "90% view, 10% create",
		next: func(st *state, rng *rand.Rand, _ *member) (request, bool) {
			if rng.IntN(10) == 0 {
				return create(st, rng, nil)
			}
			return view(st, rng, nil)
		}},
	// Under access rules. posts has public list and view rules, which
	// superusers skip: the scenarios above do the same work as without.
	{name: "view-public", caller: asAnonymous, what: "view, with no credentials, under a public view rule",
		next: func(st *state, rng *rand.Rand, _ *member) (request, bool) {
			r, ok := view(st, rng, nil)
			r.as = asAnonymous
			return r, ok
		}},
	{name: "list-public", caller: asAnonymous, what: "list, with no credentials, under a public list rule",
		next: func(st *state, _ *rand.Rand, _ *member) (request, bool) {
			return request{method: "GET", path: st.in.records("posts") + st.in.list, as: asAnonymous}, true
		}},
	{name: "list-owner", caller: asUser,
		what: "list on member_posts as a signed-in member, under the owner-only rule author = @request.auth.id (the member's own posts)",
		next: func(st *state, _ *rand.Rand, _ *member) (request, bool) {
			return request{method: "GET", path: st.in.records("member_posts") + st.in.list, as: asUser}, true
		}},
	{name: "view-owner", caller: asUser,
		what: "GET one of the member's own member_posts by a random id, under the owner-only view rule",
		next: func(st *state, rng *rand.Rand, me *member) (request, bool) {
			if len(me.posts) == 0 {
				return request{}, false
			}
			return request{method: "GET", path: st.in.records("member_posts") + "/" + me.posts[rng.IntN(len(me.posts))], as: asUser}, true
		}},
	{name: "create-owner", caller: asUser,
		what: "POST a member_post whose author is the member, under the owner-only create rule",
		next: func(st *state, rng *rand.Rand, me *member) (request, bool) {
			body := postJSON("Bench post "+pick(rng, 3), rng.IntN(1000), rng.IntN(2) == 0, me.id, pick(rng, 40))
			return request{method: "POST", path: st.in.records("member_posts"), body: body, as: asUser}, true
		}},
}

func view(st *state, rng *rand.Rand, _ *member) (request, bool) {
	return request{method: "GET", path: st.in.records("posts") + "/" + st.posts[rng.IntN(len(st.posts))]}, true
}

func create(st *state, rng *rand.Rand, _ *member) (request, bool) {
	body := postJSON("Bench post "+pick(rng, 3), rng.IntN(1000), rng.IntN(2) == 0,
		st.users[rng.IntN(len(st.users))], pick(rng, 40))
	return request{method: "POST", path: st.in.records("posts"), body: body, keep: st.keepCreated}, true
}

// scenarioNamed returns the scenario called name.
func scenarioNamed(name string) (scenario, bool) {
	for _, s := range scenarios {
		if s.name == name {
			return s, true
		}
	}
	return scenario{}, false
}
