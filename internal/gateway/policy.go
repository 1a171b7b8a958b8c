package gateway

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Policy names, the values of Config.Policy.
const (
	PolicyRoundRobin = "round_robin"
	PolicyLeastConn  = "least_conn"
	PolicyWeighted   = "weighted"
	PolicyP2C        = "p2c"
)

// policy chooses the upstream for one attempt among those eligible: ups
// holds every known upstream; one is eligible when it is available now and
// not in tried (the upstreams earlier attempts of the request went to).
// It returns nil when none is.
type policy interface {
	pick(ups []*upstream, tried []*upstream, now time.Time) *upstream
}

func newPolicy(name string) (policy, error) {
	switch name {
	case "", PolicyRoundRobin:
		return &roundRobin{}, nil
	case PolicyLeastConn:
		return leastConn{}, nil
	case PolicyWeighted:
		return &weighted{}, nil
	case PolicyP2C:
		return p2c{}, nil
	}
	return nil, fmt.Errorf("policy %q is not one of %s, %s, %s, %s", name, PolicyRoundRobin, PolicyLeastConn, PolicyWeighted, PolicyP2C)
}

func eligible(u *upstream, tried []*upstream, now time.Time) bool {
	return !slices.Contains(tried, u) && u.isAvailable(now)
}

// roundRobin takes the upstreams in turn, skipping those not eligible.
type roundRobin struct{ next atomic.Uint64 }

func (p *roundRobin) pick(ups, tried []*upstream, now time.Time) *upstream {
	n := uint64(len(ups))
	if n == 0 {
		return nil
	}
	start := p.next.Add(1) - 1
	for i := range n {
		if u := ups[(start+i)%n]; eligible(u, tried, now) {
			return u
		}
	}
	return nil
}

// leastConn takes the upstream with the fewest requests in flight, a random
// one among equals.
type leastConn struct{}

func (leastConn) pick(ups, tried []*upstream, now time.Time) *upstream {
	var best *upstream
	var bestN int64
	ties := 0
	for _, u := range ups {
		if !eligible(u, tried, now) {
			continue
		}
		n := u.inFlight.Load()
		switch {
		case best == nil || n < bestN:
			best, bestN, ties = u, n, 1
		case n == bestN:
			// Reservoir sampling keeps each of the equals with the same chance.
			ties++
			if rand.IntN(ties) == 0 {
				best = u
			}
		}
	}
	return best
}

// weighted is nginx's smooth weighted round robin: each pick adds every
// eligible upstream's weight to its current value, takes the largest and
// subtracts the total from it, which spreads an upstream's turns evenly
// instead of in bursts.
type weighted struct{ mu sync.Mutex }

func (p *weighted) pick(ups, tried []*upstream, now time.Time) *upstream {
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *upstream
	total := 0
	for _, u := range ups {
		if !eligible(u, tried, now) {
			continue
		}
		u.swrrCurrent += u.weight
		total += u.weight
		if best == nil || u.swrrCurrent > best.swrrCurrent {
			best = u
		}
	}
	if best != nil {
		best.swrrCurrent -= total
	}
	return best
}

// p2c draws two eligible upstreams at random and takes the one with the
// lower latency average, or with fewer requests in flight when the averages
// are within p2cTie of each other (as they are before any sample).
type p2c struct{}

func (p2c) pick(ups, tried []*upstream, now time.Time) *upstream {
	var buf [16]*upstream
	cand := buf[:0]
	for _, u := range ups {
		if eligible(u, tried, now) {
			cand = append(cand, u)
		}
	}
	switch len(cand) {
	case 0:
		return nil
	case 1:
		return cand[0]
	}
	i := rand.IntN(len(cand))
	j := rand.IntN(len(cand) - 1)
	if j >= i {
		j++
	}
	a, b := cand[i], cand[j]
	la, lb := a.latency(now), b.latency(now)
	switch {
	case la < lb*(1-p2cTie):
		return a
	case lb < la*(1-p2cTie):
		return b
	case b.inFlight.Load() < a.inFlight.Load():
		return b
	}
	return a
}

// p2cTie is the relative difference under which two latency averages count
// as equal: noise between like nodes, where the in-flight count is the
// better guide.
const p2cTie = 0.1
