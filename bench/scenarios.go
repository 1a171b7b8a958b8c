package bench

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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
	// made holds the posts that creates by the superuser and by anonymous
	// callers made, for their delete scenarios; each member has its own.
	made pool
}

// member returns the member whose token worker slot sends, nil when no
// member is signed in.
func (st *state) member(slot int) *member {
	if len(st.members) == 0 {
		return nil
	}
	return &st.members[slot%len(st.members)]
}

// pools are the pools the delete scenario of caller as takes from.
func (st *state) pools(as caller) []*pool {
	if as != asUser {
		return []*pool{&st.made}
	}
	ps := make([]*pool, len(st.members))
	for i := range st.members {
		ps[i] = st.members[i].made
	}
	return ps
}

// pool holds the ids of posts that creates made, for a delete scenario
// to take, each once: between a delete's rounds it moves from one share
// to the next, so that the warm-up and each round delete their own.
type pool struct {
	mu   sync.Mutex
	kept []string // posts made since the last fill

	ids       []string // what the delete scenario takes: ids[next] up to ids[end]
	next, end atomic.Int64
	shares    []int64 // how many the warm-up and each round may take
}

// keep remembers the id of the post whose create answered body.
func (p *pool) keep(body []byte) {
	var rec struct{ ID string }
	if json.Unmarshal(body, &rec) == nil && rec.ID != "" {
		p.mu.Lock()
		p.kept = append(p.kept, rec.ID)
		p.mu.Unlock()
	}
}

// take returns the next id of the current share; false when it is spent.
func (p *pool) take() (string, bool) {
	i := p.next.Add(1) - 1
	if i >= p.end.Load() {
		return "", false
	}
	return p.ids[i], true
}

// fill gives the delete scenario the posts kept so far, split between its
// warm-up and rounds in proportion to their lengths.
func (p *pool) fill(parts []time.Duration) {
	p.mu.Lock()
	p.ids, p.kept = p.kept, nil
	p.mu.Unlock()
	var total time.Duration
	for _, d := range parts {
		total += d
	}
	p.shares = p.shares[:0]
	for _, d := range parts {
		p.shares = append(p.shares, int64(float64(len(p.ids))*float64(d)/float64(total)))
	}
	p.next.Store(0)
	p.end.Store(0)
}

// setShare lets take return share i (the warm-up's is 0).
func (p *pool) setShare(i int) {
	start := p.end.Load()
	p.next.Store(start)
	p.end.Store(start + p.shares[i])
}

// scope is what a caller's requests address: the superuser and anonymous
// callers work on posts, a member on member_posts, its own posts only.
type scope struct {
	records string // the records path of the collection
	as      caller
	posts   []string // the posts it views and updates
	me      *member  // the member, as asUser
	made    *pool    // where its creates go and its deletes come from
}

func (st *state) scope(as caller, me *member) scope {
	if as == asUser {
		return scope{records: st.in.records("member_posts"), as: as, posts: me.posts, me: me, made: me.made}
	}
	return scope{records: st.in.records("posts"), as: as, posts: st.posts, made: &st.made}
}

func (s scope) request(method, path string, body []byte) request {
	return request{method: method, path: s.records + path, body: body, as: s.as}
}

// author is who a post that s creates is written by: the member, or a
// random user.
func (s scope) author(st *state, rng *rand.Rand) string {
	if s.me != nil {
		return s.me.id
	}
	return st.users[rng.IntN(len(st.users))]
}

// operation is one kind of request, which each caller sends in its scope.
type operation struct {
	name, what string
	// next returns a worker's next request; false when there is nothing
	// left to do (delete, once its share is spent).
	next func(st *state, rng *rand.Rand, s scope) (request, bool)
}

// scenario is one operation, sent by one caller. A scenario runs on every
// target that can express its caller's access (see target.cannot).
type scenario struct {
	name   string
	op     string // the operation's name
	caller caller
	what   string
	// next returns a worker's next request; false when there is nothing
	// left to do. me is the member whose token the worker sends as
	// asUser, nil when no member is signed in.
	next func(st *state, rng *rand.Rand, me *member) (request, bool)
	// cached runs the scenario with the target's own cache on posts (see
	// target.cache); a target without one does not run it.
	cached bool
}

// hotPosts is how many posts view-cached reads: a working set the cache
// holds whole after the warm-up, as a popular slice of the data would be.
const hotPosts = 1000

func viewOp(_ *state, rng *rand.Rand, s scope) (request, bool) {
	if len(s.posts) == 0 {
		return request{}, false
	}
	return s.request("GET", "/"+s.posts[rng.IntN(len(s.posts))], nil), true
}

func createOp(st *state, rng *rand.Rand, s scope) (request, bool) {
	body := postJSON("Bench post "+pick(rng, 3), rng.IntN(1000), rng.IntN(2) == 0, s.author(st, rng), pick(rng, 40))
	r := s.request("POST", "", body)
	r.keep = s.made.keep
	return r, true
}

// operations lists every operation in the order its scenarios run: delete
// takes the posts that create made.
var operations = []operation{
	{name: "view", what: "GET one post by a random id", next: viewOp},
	{name: "list", what: "GET 50 posts with published = true && views >= 500, sorted by -views, no total",
		next: func(st *state, _ *rand.Rand, s scope) (request, bool) {
			return s.request("GET", st.in.list, nil), true
		}},
	{name: "expand", what: "list, with each post's author expanded",
		next: func(st *state, _ *rand.Rand, s scope) (request, bool) {
			return s.request("GET", st.in.expand, nil), true
		}},
	{name: "create", what: "POST a new post", next: createOp},
	{name: "update", what: "PATCH the views of a random post",
		next: func(_ *state, rng *rand.Rand, s scope) (request, bool) {
			body := strconv.AppendInt([]byte(`{"views":`), int64(rng.IntN(1000)), 10)
			return s.request("PATCH", "/"+s.posts[rng.IntN(len(s.posts))], append(body, '}')), true
		}},
	{name: "delete", what: "DELETE a post made by create or by a setup phase just before (each post once)",
		next: func(_ *state, _ *rand.Rand, s scope) (request, bool) {
			id, ok := s.made.take()
			if !ok {
				return request{}, false
			}
			return s.request("DELETE", "/"+id, nil), true
		}},
	{name: "mixed", what: "90% view, 10% create",
		next: func(st *state, rng *rand.Rand, s scope) (request, bool) {
			if rng.IntN(10) == 0 {
				return createOp(st, rng, s)
			}
			return viewOp(st, rng, s)
		}},
}

// callers are the callers every operation runs as, in order, with the
// suffix of their scenarios' names and what sets them apart.
var callers = []struct {
	as           caller
	suffix, what string
}{
	{asSuperuser, "", ""},
	{asAnonymous, "-public", "; no credentials, under posts' public rules"},
	{asUser, "-owner", "; on member_posts as a signed-in member, under the owner-only rules (author = @request.auth.id): its own posts"},
}

// scenarios lists every scenario in the order they run: each caller's
// operations, and after the superuser's view, view-cached.
var scenarios = func() []scenario {
	var out []scenario
	for _, c := range callers {
		for _, op := range operations {
			out = append(out, scenario{name: op.name + c.suffix, op: op.name, caller: c.as, what: op.what + c.what,
				next: func(st *state, rng *rand.Rand, me *member) (request, bool) {
					return op.next(st, rng, st.scope(c.as, me))
				}})
			if op.name == "view" && c.as == asSuperuser {
				out = append(out, scenario{name: "view-cached", op: "view", cached: true,
					what: "view of one of 1,000 posts (a hot set), with the target's cache on posts (Strata: cache-aside, in memory)",
					next: func(st *state, rng *rand.Rand, _ *member) (request, bool) {
						return request{method: "GET", path: st.in.records("posts") + "/" + st.posts[rng.IntN(min(hotPosts, len(st.posts)))]}, true
					}})
			}
		}
	}
	return out
}()

// scenarioNamed returns the scenario called name.
func scenarioNamed(name string) (scenario, bool) {
	for _, s := range scenarios {
		if s.name == name {
			return s, true
		}
	}
	return scenario{}, false
}

// scenarioOf returns the scenario of operation op sent by c.
func scenarioOf(op string, c caller) scenario {
	for _, s := range scenarios {
		if s.op == op && s.caller == c && !s.cached {
			return s
		}
	}
	panic("no scenario " + op + " as " + c.String())
}
