package bench

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
)

// request is one request a worker sends.
type request struct {
	method, path string
	body         []byte
	// keep, when set, is given the body of a 2xx answer.
	keep func(body []byte)
}

// state is what the scenarios of one target share.
type state struct {
	in    *instance
	cpu   cpuMeter
	users []string // ids of the loaded users
	posts []string // ids of the loaded posts

	mu      sync.Mutex
	created []string // ids of the posts that create and mixed made

	// The delete scenario takes ids from pool[next] up to pool[end].
	pool      []string
	next, end atomic.Int64
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

// scenario is one kind of traffic, sent by a caller. Every scenario runs
// as a superuser for now, on every target: Strata has no per-collection
// access rules yet.
type scenario struct {
	name   string
	caller string
	what   string
	// next returns a worker's next request; false when there is nothing
	// left to do (delete, once its ids are spent).
	next func(st *state, rng *rand.Rand) (request, bool)
}

// scenarios lists every scenario in the order they run: delete takes the
// posts that create made.
var scenarios = []scenario{
	{name: "view", caller: "superuser", what: "GET one post by a random id", next: view},
	{name: "list", caller: "superuser", what: "GET 50 posts with published = true && views >= 500, sorted by -views, no total",
		next: func(st *state, _ *rand.Rand) (request, bool) {
			return request{method: "GET", path: st.in.records("posts") + st.in.list}, true
		}},
	{name: "expand", caller: "superuser", what: "list, with each post's author expanded",
		next: func(st *state, _ *rand.Rand) (request, bool) {
			return request{method: "GET", path: st.in.records("posts") + st.in.expand}, true
		}},
	{name: "create", caller: "superuser", what: "POST a new post", next: create},
	{name: "update", caller: "superuser", what: "PATCH the views of a random post",
		next: func(st *state, rng *rand.Rand) (request, bool) {
			id := st.posts[rng.IntN(len(st.posts))]
			body := strconv.AppendInt([]byte(`{"views":`), int64(rng.IntN(1000)), 10)
			return request{method: "PATCH", path: st.in.records("posts") + "/" + id, body: append(body, '}')}, true
		}},
	{name: "delete", caller: "superuser", what: "DELETE a post made by create or by a setup phase just before (each post once)",
		next: func(st *state, _ *rand.Rand) (request, bool) {
			i := st.next.Add(1) - 1
			if i >= st.end.Load() {
				return request{}, false
			}
			return request{method: "DELETE", path: st.in.records("posts") + "/" + st.pool[i]}, true
		}},
	{name: "mixed", caller: "superuser", what: "90% view, 10% create",
		next: func(st *state, rng *rand.Rand) (request, bool) {
			if rng.IntN(10) == 0 {
				return create(st, rng)
			}
			return view(st, rng)
		}},
	// Scenarios for other callers come with Strata's per-collection rules,
	// each on every target that can express the rule:
	//   view-public, list-public  caller "anonymous", under a public rule
	//   list-owner                caller "user", under an owner-only rule
	//                             (author = the caller)
}

func view(st *state, rng *rand.Rand) (request, bool) {
	return request{method: "GET", path: st.in.records("posts") + "/" + st.posts[rng.IntN(len(st.posts))]}, true
}

func create(st *state, rng *rand.Rand) (request, bool) {
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
