package gateway

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestRoundRobinIsEven(t *testing.T) {
	a, b, c := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "c", nil)
	_, gw := startGateway(t, Config{Upstreams: []string{a.url, b.url, c.url}, Policy: PolicyRoundRobin})
	cl := client(t)
	for range 300 {
		if code, body := get(t, cl, gw.URL+"/api/v1/x"); code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
	}
	for _, be := range []*backend{a, b, c} {
		if n := be.hits.Load(); n != 100 {
			t.Errorf("backend %s got %d of 300 requests, want 100", be.name, n)
		}
	}
}

func TestWeightedProportions(t *testing.T) {
	a, b, c := newBackend(t, "a", nil), newBackend(t, "b", nil), newBackend(t, "c", nil)
	_, gw := startGateway(t, Config{
		Upstreams: []string{a.url + " weight=5", b.url + " weight=3", c.url + " weight=2"},
		Policy:    PolicyWeighted,
	})
	cl := client(t)
	// Smooth weighted round robin: within every 10 requests, 5, 3 and 2,
	// never a run of one upstream longer than its share needs.
	var seq []string
	for range 1000 {
		_, body := get(t, cl, gw.URL+"/")
		seq = append(seq, backendOf(t, body))
	}
	want := map[string]int64{"a": 500, "b": 300, "c": 200}
	for _, be := range []*backend{a, b, c} {
		if n := be.hits.Load(); n != want[be.name] {
			t.Errorf("backend %s got %d of 1000, want %d", be.name, n, want[be.name])
		}
	}
	run, longest := 1, 1
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] {
			run++
			longest = max(longest, run)
		} else {
			run = 1
		}
	}
	if longest > 2 {
		t.Errorf("longest run to one upstream is %d; smooth weighting should keep it at 2", longest)
	}
}

func TestLeastConnPrefersIdleUpstream(t *testing.T) {
	release := make(chan struct{})
	var held sync.WaitGroup
	busy := newBackend(t, "busy", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			held.Done()
			<-release
		}
		w.Write([]byte(`{"backend":"busy"}`))
	})
	idle := newBackend(t, "idle", nil)
	_, gw := startGateway(t, Config{Upstreams: []string{busy.url, idle.url}, Policy: PolicyLeastConn})
	cl := client(t)

	// Long requests: the idle backend answers its share at once, the first
	// that lands on busy stays there. Send them until busy holds one.
	var clients sync.WaitGroup
	t.Cleanup(func() { close(release); clients.Wait() })
	held.Add(1)
	holding := make(chan struct{})
	go func() { held.Wait(); close(holding) }()
	for sent := 0; ; sent++ {
		select {
		case <-holding:
		default:
			if sent > 50 {
				t.Fatal("busy never got a long request")
			}
			clients.Go(func() { get(t, cl, gw.URL+"/hold") })
			time.Sleep(5 * time.Millisecond)
			continue
		}
		break
	}
	for range 100 {
		if code, body := get(t, cl, gw.URL+"/"); code != http.StatusOK || backendOf(t, body) != "idle" {
			t.Fatalf("request went to %s (status %d) while busy holds one", body, code)
		}
	}
}

func TestP2CAvoidsSlowUpstream(t *testing.T) {
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(60 * time.Millisecond)
		w.Write([]byte(`{"backend":"slow"}`))
	})
	fast1, fast2 := newBackend(t, "fast1", nil), newBackend(t, "fast2", nil)
	_, gw := startGateway(t, Config{Upstreams: []string{slow.url, fast1.url, fast2.url}, Policy: PolicyP2C})
	cl := client(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if code, _ := get(t, cl, gw.URL+"/"); code != http.StatusOK {
					t.Errorf("status %d", code)
				}
			}
		})
	}
	wg.Wait()
	// A fair share would be 67 of 200; the slow node gets a few while its
	// average climbs (new nodes start out fast), then hardly any.
	if n := slow.hits.Load(); n > 25 {
		t.Errorf("slow upstream got %d of 200 requests; p2c should avoid it", n)
	}
	for _, f := range []*backend{fast1, fast2} {
		if n := f.hits.Load(); n < 50 {
			t.Errorf("%s got %d of 200; the fast upstreams should share the load", f.name, n)
		}
	}
	t.Logf("slow %d, fast1 %d, fast2 %d", slow.hits.Load(), fast1.hits.Load(), fast2.hits.Load())
}
