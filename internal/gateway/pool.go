package gateway

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// pool is the set of upstreams: the static ones in configuration order,
// then the discovered ones in address order. Readers take the current
// snapshot without locking; updates replace it.
type pool struct {
	m *metrics

	all atomic.Pointer[[]*upstream]

	mu         sync.Mutex // serializes updates
	static     []*upstream
	discovered []*upstream
}

func newPool(m *metrics) *pool {
	p := &pool{m: m}
	p.all.Store(&[]*upstream{})
	return p
}

// list returns the current upstreams; the caller must not modify it.
func (p *pool) list() []*upstream { return *p.all.Load() }

func (p *pool) setStatic(specs []UpstreamSpec) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range specs {
		p.static = append(p.static, newUpstream(s, true, p.m))
	}
	p.publishLocked()
}

// setDiscovered makes specs the discovered upstreams. Upstreams already
// known keep their state; addresses also listed statically are skipped.
// It returns the addresses added and removed.
func (p *pool) setDiscovered(specs []UpstreamSpec) (added, removed []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := map[string]*upstream{}
	for _, u := range p.discovered {
		keep[u.key] = u
	}
	isStatic := map[string]bool{}
	for _, u := range p.static {
		isStatic[u.key] = true
	}
	var next []*upstream
	seen := map[string]bool{}
	for _, s := range specs {
		key := s.URL.String()
		if isStatic[key] || seen[key] {
			continue
		}
		seen[key] = true
		if u, ok := keep[key]; ok {
			next = append(next, u)
			delete(keep, key)
			continue
		}
		next = append(next, newUpstream(s, false, p.m))
		added = append(added, key)
	}
	for key, u := range keep {
		removed = append(removed, key)
		p.m.forget(u)
	}
	slices.SortFunc(next, func(a, b *upstream) int { return strings.Compare(a.key, b.key) })
	slices.Sort(removed)
	p.discovered = next
	p.publishLocked()
	return added, removed
}

func (p *pool) publishLocked() {
	all := make([]*upstream, 0, len(p.static)+len(p.discovered))
	all = append(all, p.static...)
	all = append(all, p.discovered...)
	p.all.Store(&all)
	p.m.upstreams.Set(float64(len(all)))
}
