package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// live is a target that is up and loaded, between its preparation and the
// end of the run: every target stays up while the scenarios run, so that
// their rounds can alternate.
type live struct {
	t       *target
	ds      *dataset
	tr      TargetReport
	in      *instance // nil when the target failed to start or load
	st      *state
	run     []scenario // the scenarios it takes, in order
	c       *http.Client
	results []Result
	fails   []string
}

func (lv *live) fail(err error, logf func(string, ...any)) *live {
	logf("%s: %v", lv.t.name, err)
	lv.fails = append(lv.fails, lv.t.name+": "+err.Error())
	if lv.in != nil {
		lv.in.proc.stop()
		lv.in = nil
	}
	return lv
}

// prepareTarget measures t's start to ready and memory at start, then
// starts the instance that takes the scenarios, loads it and checks that
// it answers them as the others do. It returns with the instance idle,
// or with lv.in nil and lv.fails saying why not.
func prepareTarget(ctx context.Context, cfg Config, t *target, ds *dataset, dir string, cpu cpuMeter, logf func(string, ...any)) *live {
	lv := &live{t: t, ds: ds, tr: TargetReport{Name: t.name, Version: t.version, LoadHow: t.loadHow}}
	for i := range cfg.Starts {
		in, took, err := startInstance(ctx, t, filepath.Join(dir, fmt.Sprintf("start-%d", i)), false, false)
		if err != nil {
			return lv.fail(err, logf)
		}
		rss := idleRSS(ctx, in.proc.pid(), cfg.Settle)
		if err := in.proc.stop(); err != nil {
			return lv.fail(err, logf)
		}
		lv.tr.StartMS = append(lv.tr.StartMS, ms(took))
		lv.tr.RSSStartKiB = append(lv.tr.RSSStartKiB, float64(rss))
	}
	lv.tr.StartMedianMS = median(lv.tr.StartMS)
	lv.tr.RSSStartMedianKiB = int64(median(lv.tr.RSSStartKiB))
	logf("%s: %s; start to ready %.0f ms, RSS idle at start %.1f MiB (medians of %d)", t.name, t.version, lv.tr.StartMedianMS,
		float64(lv.tr.RSSStartMedianKiB)/1024, cfg.Starts)

	in, _, err := startInstance(ctx, t, filepath.Join(dir, "run"), true, cfg.Profile != "")
	if err != nil {
		return lv.fail(err, logf)
	}
	lv.in = in
	if t.prepare != nil {
		if err := t.prepare(ctx, in); err != nil {
			return lv.fail(fmt.Errorf("prepare: %w", err), logf)
		}
	}
	began := time.Now()
	users, posts, err := t.load(ctx, in, ds, cfg.Conns)
	if err != nil {
		return lv.fail(err, logf)
	}
	lv.tr.LoadSeconds = time.Since(began).Seconds()
	if !t.viewOnly {
		logf("%s: loaded %d users and %d posts in %.1f s (%.0f records/s)", t.name, len(users), len(posts),
			lv.tr.LoadSeconds, float64(len(users)+len(posts))/lv.tr.LoadSeconds)
	}
	if !t.viewOnly {
		if err := verify(ctx, in, posts); err != nil {
			return lv.fail(fmt.Errorf("after the load: %w", err), logf)
		}
	}
	for _, sc := range scenarios {
		if !slices.Contains(cfg.Scenarios, sc.name) || (t.viewOnly && sc.name != "view") {
			continue
		}
		why, ok := t.cannot[sc.caller]
		if sc.cached && t.cache == nil {
			why, ok = "the target has no cache of its own", true
		}
		if ok {
			if lv.tr.NotRun == nil {
				lv.tr.NotRun = map[string]string{}
			}
			lv.tr.NotRun[sc.name] = why
			logf("%s %s: not run: %s", t.name, sc.name, why)
			continue
		}
		lv.run = append(lv.run, sc)
	}
	lv.st = &state{in: in, cpu: cpu, server: []int{in.proc.pid()}, users: users, posts: posts}
	if t.name == "strata-postgres" && cpu.db != 0 {
		lv.st.server = append(lv.st.server, cpu.db)
	}
	if slices.ContainsFunc(lv.run, func(sc scenario) bool { return sc.caller == asAnonymous }) {
		if err := verifyAnonymous(ctx, in, users, posts); err != nil {
			return lv.fail(fmt.Errorf("after the load: %w", err), logf)
		}
	}
	lv.tr.RSSLoadKiB = idleRSS(ctx, in.proc.pid(), cfg.Settle)
	// Members come after the RSS of the load is read: hashing their
	// passwords takes memory that has nothing to do with the data.
	if slices.ContainsFunc(lv.run, func(sc scenario) bool { return sc.caller == asUser }) {
		began := time.Now()
		ms, err := t.members(ctx, in, ds)
		if err != nil {
			return lv.fail(fmt.Errorf("members: %w", err), logf)
		}
		lv.tr.MembersSeconds, lv.tr.MembersHow = time.Since(began).Seconds(), t.membersHow
		logf("%s: %d members and %d member_posts loaded, members signed in, in %.1f s", t.name, len(ms), len(ds.posts), lv.tr.MembersSeconds)
		if err := verifyOwner(ctx, in, ds, ms); err != nil {
			return lv.fail(fmt.Errorf("after loading members: %w", err), logf)
		}
		for i := range ms {
			ms[i].made = new(pool)
		}
		lv.st.members = ms
	}
	// What the load left to do in the background (Strata's relay
	// publishing the records' events, PostgreSQL's autovacuum) is done
	// before any round, of this target or another, is measured.
	if took, ok := settle(ctx, lv.st.server, time.Minute); !ok {
		logf("%s: still busy %.0f s after the load; measuring anyway", t.name, took.Seconds())
	}
	lv.c = newClient(cfg.Conns)
	return lv
}

// runScenarios runs each scenario on every live target that takes it.
// The rounds alternate between the targets, in an order that turns each
// round, so that each target's rounds meet the same moments of a machine
// whose speed drifts: the ratios between targets are taken from the same
// stretch of time.
func runScenarios(ctx context.Context, cfg Config, lives []*live, logf func(string, ...any)) {
	for _, sc := range scenarios {
		var on []*live
		for _, lv := range lives {
			if lv.in != nil && slices.ContainsFunc(lv.run, func(s scenario) bool { return s.name == sc.name }) {
				on = append(on, lv)
			}
		}
		if len(on) == 0 {
			continue
		}
		ms := make([]*measure, len(on))
		for i, lv := range on {
			if sc.cached {
				if err := lv.t.cache(ctx, lv.in, true); err != nil {
					lv.fails = append(lv.fails, fmt.Sprintf("%s %s: turn the cache on: %v", lv.t.name, sc.name, err))
					continue
				}
			}
			if sc.caller == asUser {
				// The members signed in when the target was prepared,
				// maybe longer ago than their tokens last.
				if err := lv.t.signIn(ctx, lv.in, lv.ds, lv.st.members); err != nil {
					lv.fails = append(lv.fails, fmt.Sprintf("%s %s: %v", lv.t.name, sc.name, err))
					continue
				}
			}
			ms[i] = startMeasure(ctx, lv.c, lv.st, sc, cfg)
		}
		for r := range cfg.Rounds {
			for k := range on {
				i := (k + r) % len(on)
				if ms[i] == nil || ctx.Err() != nil {
					continue
				}
				var profiled <-chan error
				if lv := on[i]; lv.in.pprof != "" {
					profiled = profileCPU(ctx, lv.in.pprof, cfg.Duration,
						filepath.Join(cfg.Profile, fmt.Sprintf("%s-%s.%d.pprof", lv.t.name, sc.name, r+1)))
				}
				ms[i].round(ctx, r)
				if profiled != nil {
					if err := <-profiled; err != nil {
						on[i].fails = append(on[i].fails, fmt.Sprintf("%s %s: CPU profile: %v", on[i].t.name, sc.name, err))
					}
				}
			}
		}
		for i, lv := range on {
			if ms[i] == nil {
				continue
			}
			r := ms[i].result()
			if sc.cached {
				if err := lv.t.cache(ctx, lv.in, false); err != nil {
					lv.fails = append(lv.fails, fmt.Sprintf("%s %s: turn the cache off: %v", lv.t.name, sc.name, err))
				}
			}
			r.Target = lv.t.name
			lv.results = append(lv.results, r)
			logf("%s %s (%s): %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d errors, %.0f µs CPU per request, %.2f cores busy elsewhere %s",
				lv.t.name, sc.name, r.Caller, r.RPS, r.P50, r.P99, r.Errors, r.CPUPerRequest, r.OtherCores, r.Note)
			if r.Errors > 0 {
				lv.fails = append(lv.fails, fmt.Sprintf("%s %s: %d errors of %d requests; the first: %s", lv.t.name, sc.name, r.Errors, r.Requests, r.ErrorSample))
			}
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// finish reads the target's RSS after the scenarios and stops it.
func (lv *live) finish(ctx context.Context, cfg Config) {
	if lv.in == nil {
		return
	}
	lv.tr.RSSRunKiB = idleRSS(ctx, lv.in.proc.pid(), cfg.Settle)
	lv.c.CloseIdleConnections()
	if err := lv.in.proc.stop(); err != nil {
		lv.fails = append(lv.fails, lv.t.name+": "+err.Error())
	}
	lv.in = nil
}

// startInstance starts t with its data in root/data and waits until it is
// ready. With setup, it first runs the target's setup (a superuser); with
// profile, a target that can serves its profiles. The time it returns is
// from process start to ready.
func startInstance(ctx context.Context, t *target, root string, setup, profile bool) (*instance, time.Duration, error) {
	data := filepath.Join(root, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, 0, err
	}
	flags, err := t.data(ctx, data)
	if err != nil {
		return nil, 0, err
	}
	if setup && t.setup != nil {
		if err := t.setup(ctx, t.bin, flags); err != nil {
			return nil, 0, err
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, 0, err
	}
	args := append(t.serve(addr), flags...)
	var pprof string
	if profile && t.profile != nil {
		paddr, err := freeAddr()
		if err != nil {
			return nil, 0, err
		}
		args, pprof = append(args, t.profile(paddr)...), "http://"+paddr
	}
	began := time.Now()
	p, err := startProcess(t.bin, args, root, filepath.Join(root, "server.log"))
	if err != nil {
		return nil, 0, err
	}
	if err := p.waitReady(ctx, "http://"+addr+t.health, time.Minute); err != nil {
		p.stop()
		return nil, 0, err
	}
	return &instance{proc: p, base: "http://" + addr, pprof: pprof, dialect: t.dialect}, time.Since(began), nil
}

// idleRSS waits for the process to settle and reads its RSS.
func idleRSS(ctx context.Context, pid int, settle time.Duration) int64 {
	select {
	case <-ctx.Done():
	case <-time.After(settle):
	}
	kib, _ := rssKiB(pid)
	return kib
}

// verify checks that a loaded target answers the scenarios' reads with the
// same work as the others: a post by id, and 50 published posts with
// views >= 500, most viewed first, each with its author when expanded.
func verify(ctx context.Context, in *instance, posts []string) error {
	c := newClient(1)
	defer c.CloseIdleConnections()
	var rec struct{ ID string }
	if err := in.call(ctx, c, "GET", in.records("posts")+"/"+posts[0], nil, &rec); err != nil || rec.ID != posts[0] {
		return fmt.Errorf("view answered id %q, want %q (%v)", rec.ID, posts[0], err)
	}
	for _, q := range []string{in.list, in.expand} {
		var page struct {
			Items []struct {
				Views     float64
				Published bool
				Expand    struct{ Author struct{ Name string } }
			}
		}
		if err := in.call(ctx, c, "GET", in.records("posts")+q, nil, &page); err != nil {
			return err
		}
		if len(page.Items) != 50 {
			return fmt.Errorf("%s answered %d posts, want 50", q, len(page.Items))
		}
		for i, p := range page.Items {
			if !p.Published || p.Views < 500 || (i > 0 && p.Views > page.Items[i-1].Views) {
				return fmt.Errorf("%s answered a post out of filter or order: %+v", q, p)
			}
			if q == in.expand && p.Expand.Author.Name == "" {
				return fmt.Errorf("%s answered a post without its author", q)
			}
		}
	}
	return nil
}

// listPage is a page of the list query.
type listPage struct {
	Items []struct {
		ID        string
		Author    string
		Views     float64
		Published bool
		Expand    struct{ Author struct{ ID, Name string } }
	}
}

// checkList checks that a page of the list query holds want posts, each
// published with views >= 500, most viewed first, and (when author is not
// "") written by author.
func checkList(p *listPage, want int, author string) error {
	if len(p.Items) != want {
		return fmt.Errorf("answered %d posts, want %d", len(p.Items), want)
	}
	for i, it := range p.Items {
		if !it.Published || it.Views < 500 || (i > 0 && it.Views > p.Items[i-1].Views) {
			return fmt.Errorf("answered a post out of filter or order: %+v", it)
		}
		if author != "" && it.Author != author {
			return fmt.Errorf("answered post %s of author %q, want only %q's", it.ID, it.Author, author)
		}
	}
	return nil
}

// checkExpanded checks a page of the expand query as checkList does, and
// that each post holds its author expanded, called name when name is not
// "".
func checkExpanded(p *listPage, want int, name string) error {
	if err := checkList(p, want, ""); err != nil {
		return err
	}
	for _, it := range p.Items {
		a := it.Expand.Author
		if a.ID != it.Author || a.Name == "" || (name != "" && a.Name != name) {
			return fmt.Errorf("post %s of author %q has the author %+v expanded", it.ID, it.Author, a)
		}
	}
	return nil
}

// verifyAnonymous checks that posts answers a caller with no credentials
// as it answers the superuser: a post by id, the list, the list with its
// authors expanded, and a post created, updated and deleted.
func verifyAnonymous(ctx context.Context, in *instance, users, posts []string) error {
	c := newClient(1)
	defer c.CloseIdleConnections()
	var rec struct{ ID string }
	if err := in.callAs(ctx, c, "", "GET", in.records("posts")+"/"+posts[0], nil, &rec); err != nil || rec.ID != posts[0] {
		return fmt.Errorf("anonymous view answered id %q, want %q (%v)", rec.ID, posts[0], err)
	}
	var page listPage
	if err := in.callAs(ctx, c, "", "GET", in.records("posts")+in.list, nil, &page); err != nil {
		return err
	}
	if err := checkList(&page, 50, ""); err != nil {
		return fmt.Errorf("anonymous list: %w", err)
	}
	if err := in.callAs(ctx, c, "", "GET", in.records("posts")+in.expand, nil, &page); err != nil {
		return err
	}
	if err := checkExpanded(&page, 50, ""); err != nil {
		return fmt.Errorf("anonymous expand: %w", err)
	}
	return checkWrites(ctx, in, c, "", "posts", users[0])
}

// checkWrites checks, as the caller whose Authorization header is auth,
// that a post of author created in collection can be updated and
// deleted, and is gone after.
func checkWrites(ctx context.Context, in *instance, c *http.Client, auth, collection, author string) error {
	var rec struct {
		ID    string
		Views float64
	}
	// Unpublished, so that no list counts it.
	if err := in.callAs(ctx, c, auth, "POST", in.records(collection), postJSON("check", 0, false, author, "x"), &rec); err != nil {
		return fmt.Errorf("create in %s: %w", collection, err)
	}
	path := in.records(collection) + "/" + rec.ID
	if err := in.callAs(ctx, c, auth, "PATCH", path, []byte(`{"views":7}`), &rec); err != nil || rec.Views != 7 {
		return fmt.Errorf("update in %s answered views %v, want 7 (%v)", collection, rec.Views, err)
	}
	if err := in.callAs(ctx, c, auth, "DELETE", path, nil, nil); err != nil {
		return fmt.Errorf("delete in %s: %w", collection, err)
	}
	if in.callAs(ctx, c, auth, "GET", path, nil, nil) == nil {
		return fmt.Errorf("a post deleted from %s can still be read", collection)
	}
	return nil
}

// verifyOwner checks the owner-only rules: each member's list answers that
// member's matching posts only, as many as the data set says (up to 50),
// with the member as their author when expanded, and a caller with no
// credentials gets none of them; a member may view, create, update and
// delete its own posts and none of another's.
func verifyOwner(ctx context.Context, in *instance, d *dataset, ms []member) error {
	c := newClient(1)
	defer c.CloseIdleConnections()
	for i, m := range ms {
		var page listPage
		if err := in.callAs(ctx, c, m.auth, "GET", in.records("member_posts")+in.list, nil, &page); err != nil {
			return err
		}
		if err := checkList(&page, min(50, d.ownerMatches(i)), m.id); err != nil {
			return fmt.Errorf("member %d's list: %w", i, err)
		}
	}
	var page listPage
	err := in.callAs(ctx, c, "", "GET", in.records("member_posts")+in.list, nil, &page)
	if err == nil && len(page.Items) > 0 {
		return fmt.Errorf("an anonymous list of member_posts answered %d posts", len(page.Items))
	}
	if len(ms) < 2 || len(ms[0].posts) == 0 || len(ms[1].posts) == 0 {
		return nil
	}
	me, other := ms[0], ms[1]
	if err := in.callAs(ctx, c, me.auth, "GET", in.records("member_posts")+in.expand, nil, &page); err != nil {
		return err
	}
	if err := checkExpanded(&page, min(50, d.ownerMatches(0)), d.members[0].Name); err != nil {
		return fmt.Errorf("member 0's expand: %w", err)
	}
	var post struct{ Author string }
	if err := in.callAs(ctx, c, me.auth, "GET", in.records("member_posts")+"/"+me.posts[0], nil, &post); err != nil {
		return fmt.Errorf("a member's view of its own post: %w", err)
	}
	if post.Author != me.id {
		return fmt.Errorf("a member's own post has author %q, want %q", post.Author, me.id)
	}
	theirs := in.records("member_posts") + "/" + other.posts[0]
	if in.callAs(ctx, c, me.auth, "GET", theirs, nil, nil) == nil {
		return fmt.Errorf("a member viewed another member's post")
	}
	if in.callAs(ctx, c, me.auth, "PATCH", theirs, []byte(`{"views":1}`), nil) == nil {
		return fmt.Errorf("a member updated another member's post")
	}
	if in.callAs(ctx, c, me.auth, "DELETE", theirs, nil, nil) == nil {
		return fmt.Errorf("a member deleted another member's post")
	}
	if in.callAs(ctx, c, me.auth, "POST", in.records("member_posts"), postJSON("theirs", 0, false, other.id, "x"), nil) == nil {
		return fmt.Errorf("a member created a post in another member's name")
	}
	if err := checkWrites(ctx, in, c, me.auth, "member_posts", me.id); err != nil {
		return fmt.Errorf("a member's own post: %w", err)
	}
	return nil
}

// profileCPU takes a CPU profile of the instance whose profiles are at
// base for about d (whole seconds, at least one) and writes it to path;
// the channel tells when it is written.
func profileCPU(ctx context.Context, base string, d time.Duration, path string) <-chan error {
	done := make(chan error, 1)
	secs := max(1, int(d.Round(time.Second)/time.Second))
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), nil)
		if err != nil {
			done <- err
			return
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err
			return
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			done <- fmt.Errorf("%s answered %s", req.URL, res.Status)
			return
		}
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, res.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	return done
}
