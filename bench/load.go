package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Result is one scenario on one target.
type Result struct {
	Scenario string `json:"scenario"`
	// Caller is who sent the requests: superuser, anonymous or user.
	Caller    string    `json:"caller"`
	Target    string    `json:"target"`
	RoundsRPS []float64 `json:"rounds_rps"` // requests per second of each round
	RPS       float64   `json:"rps"`        // the median of RoundsRPS
	// P50 and P99 are latency percentiles in milliseconds over the
	// requests of all rounds together (not the warm-up).
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"` // transport errors and non-2xx answers
	// OtherCores is the CPU used during the rounds outside the benchmark,
	// the target and its PostgreSQL (other programs, kernel threads), in
	// cores.
	OtherCores float64 `json:"other_cpu_cores"`
	// CPUPerRequest is the CPU time, user and system, that the target (with
	// its PostgreSQL, when the benchmark started one) spent per request
	// during the rounds, in microseconds: unlike req/s, it does not depend
	// on how the machine's cores were shared with the load generator.
	CPUPerRequest float64 `json:"target_cpu_us_per_request"`
	// ErrorSample is the first error seen.
	ErrorSample string `json:"error_sample,omitempty"`
	Note        string `json:"note,omitempty"`
}

// round is what one round of a scenario measured.
type round struct {
	requests, errors int64
	elapsed          time.Duration
	lat              []time.Duration
	firstErr         string
}

// worker is one connection of the closed loop: it sends its next request
// when the previous one is answered.
type worker struct {
	slot     int // the worker's place in the round; it picks the member of asUser
	rng      *rand.Rand
	buf      bytes.Buffer
	lat      []time.Duration
	errors   int64
	firstErr string
}

// runRound runs sc on conns workers for d, or until the scenario has
// nothing left to do.
func runRound(ctx context.Context, c *http.Client, st *state, sc scenario, conns int, d time.Duration, seed uint64) round {
	ws := make([]*worker, conns)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i := range ws {
		w := &worker{slot: i, rng: rand.New(rand.NewPCG(seed, uint64(i)))}
		ws[i] = w
		me := st.member(i)
		if sc.caller == asUser && me == nil {
			w.fail("no member is signed in")
			continue
		}
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				r, ok := sc.next(st, w.rng, me)
				if !ok {
					return
				}
				w.do(ctx, c, st, r)
			}
		})
	}
	wg.Wait()
	rd := round{elapsed: time.Since(start)}
	for _, w := range ws {
		rd.requests += int64(len(w.lat))
		rd.errors += w.errors
		rd.lat = append(rd.lat, w.lat...)
		if rd.firstErr == "" {
			rd.firstErr = w.firstErr
		}
	}
	return rd
}

// do sends one request and records its latency and outcome.
func (w *worker) do(ctx context.Context, c *http.Client, st *state, r request) {
	in := st.in
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, in.base+r.path, body)
	if err != nil {
		w.fail(err.Error())
		return
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch r.as {
	case asSuperuser:
		if in.auth != "" {
			req.Header.Set("Authorization", in.auth)
		}
	case asUser:
		me := st.member(w.slot)
		if me == nil {
			w.fail("no member is signed in")
			return
		}
		req.Header.Set("Authorization", me.auth)
	}
	t0 := time.Now()
	resp, err := c.Do(req)
	if err == nil {
		w.buf.Reset()
		_, err = w.buf.ReadFrom(resp.Body)
		resp.Body.Close()
	}
	w.lat = append(w.lat, time.Since(t0))
	switch {
	case err != nil:
		w.fail(err.Error())
	case resp.StatusCode/100 != 2:
		w.fail(r.method + " " + r.path + ": " + resp.Status + ": " + clip(w.buf.Bytes(), 200))
	case r.keep != nil:
		r.keep(w.buf.Bytes())
	}
}

func (w *worker) fail(msg string) {
	w.errors++
	if w.firstErr == "" {
		w.firstErr = msg
	}
}

// measure is one scenario on one target, measured round by round while
// the other targets take their rounds in between.
type measure struct {
	c     *http.Client
	st    *state
	sc    scenario
	cfg   Config
	res   Result
	pools []*pool // delete: the pools it takes from
	lat   []time.Duration
	short int           // rounds that ended early
	ran   time.Duration // the rounds' time together
	ticks int64         // the server's CPU in its rounds and until it was quiet after each
	// elsewhere: the CPU of the whole machine and of our processes during
	// the rounds, and their time.
	busy, ours int64
	seconds    float64
}

// startMeasure prepares sc on a target and runs its warm-up.
func startMeasure(ctx context.Context, c *http.Client, st *state, sc scenario, cfg Config) *measure {
	m := &measure{c: c, st: st, sc: sc, cfg: cfg, res: Result{Scenario: sc.name, Caller: sc.caller.String()}}
	if sc.op == "delete" {
		m.pools = fillPools(ctx, c, st, sc.caller, cfg)
	}
	m.setShare(0)
	runRound(ctx, c, st, sc, cfg.Conns, cfg.Warmup, 0)
	settle(ctx, st.server, settleMax)
	return m
}

func (m *measure) setShare(i int) {
	for _, p := range m.pools {
		p.setShare(i)
	}
}

// round runs round i (from 0) and waits until the target is quiet again,
// so that what the round left to do in the background (a relay
// publishing events, a checkpoint) counts in its CPU, not in the next
// target's round.
func (m *measure) round(ctx context.Context, i int) {
	m.setShare(i + 1)
	before, okBefore := m.st.cpu.read()
	serverBefore := treeTicks(m.st.server)
	began := time.Now()
	rd := runRound(ctx, m.c, m.st, m.sc, m.cfg.Conns, m.cfg.Duration, uint64(i+1))
	if after, ok := m.st.cpu.read(); ok && okBefore {
		m.busy += after.busy - before.busy
		m.ours += after.ours - before.ours
		m.seconds += time.Since(began).Seconds()
	}
	settle(ctx, m.st.server, settleMax)
	m.ticks += treeTicks(m.st.server) - serverBefore

	m.res.RoundsRPS = append(m.res.RoundsRPS, float64(rd.requests)/rd.elapsed.Seconds())
	m.res.Requests += rd.requests
	m.res.Errors += rd.errors
	if m.res.ErrorSample == "" {
		m.res.ErrorSample = rd.firstErr
	}
	if rd.elapsed < m.cfg.Duration*9/10 {
		m.short++
	}
	m.ran += rd.elapsed
	m.lat = append(m.lat, rd.lat...)
}

// result sums up the rounds.
func (m *measure) result() Result {
	res := m.res
	res.OtherCores = otherCores(sample{}, sample{busy: m.busy, ours: m.ours}, m.seconds)
	if res.Requests > 0 {
		res.CPUPerRequest = float64(m.ticks) / clockTicks * 1e6 / float64(res.Requests)
	}
	res.RPS = median(res.RoundsRPS)
	slices.Sort(m.lat)
	res.P50, res.P99 = ms(percentile(m.lat, 0.50)), ms(percentile(m.lat, 0.99))
	if rounds := len(res.RoundsRPS); m.short > 0 {
		res.Note = fmt.Sprintf("%d of %d rounds ended early, when the posts that create made ran out; "+
			"the rounds ran %.0f%% of their length on average, and req/s is over the time they ran",
			m.short, rounds, 100*m.ran.Seconds()/(time.Duration(rounds)*m.cfg.Duration).Seconds())
	}
	return res
}

// settleMax bounds the wait for a target to go quiet after a round.
const settleMax = 5 * time.Second

// settle waits until the processes pids (and their children) use less
// than a tenth of a core over 100 ms, for at most max. It returns how
// long it waited and whether they went quiet.
func settle(ctx context.Context, pids []int, max time.Duration) (time.Duration, bool) {
	began := time.Now()
	last := treeTicks(pids)
	for time.Since(began) < max {
		select {
		case <-ctx.Done():
			return time.Since(began), false
		case <-time.After(100 * time.Millisecond):
		}
		now := treeTicks(pids)
		if now-last <= clockTicks/100 {
			return time.Since(began), true
		}
		last = now
	}
	return time.Since(began), false
}

// fillPools gives the delete scenario of caller as the posts that its
// creates made, split between the warm-up and the rounds in proportion to
// their length. Deletes are faster than creates, so it first makes more
// posts, for 60% of the time delete will take (for all of it and more
// when create did not run).
func fillPools(ctx context.Context, c *http.Client, st *state, as caller, cfg Config) []*pool {
	pools := st.pools(as)
	total := cfg.Warmup + time.Duration(cfg.Rounds)*cfg.Duration
	extra := total * 6 / 10
	made := 0
	for _, p := range pools {
		p.mu.Lock()
		made += len(p.kept)
		p.mu.Unlock()
	}
	if made == 0 {
		extra += total
	}
	runRound(ctx, c, st, scenarioOf("create", as), cfg.Conns, extra, 99)
	parts := []time.Duration{cfg.Warmup}
	for range cfg.Rounds {
		parts = append(parts, cfg.Duration)
	}
	for _, p := range pools {
		p.fill(parts)
	}
	return pools
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile is the nearest-rank percentile of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
