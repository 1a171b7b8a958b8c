package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeResolver answers LookupIP from a table the test changes.
type fakeResolver struct {
	mu  sync.Mutex
	ips []net.IP
	err error
}

func (f *fakeResolver) set(err error, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ips, f.err = nil, err
	for _, s := range ips {
		f.ips = append(f.ips, net.ParseIP(s))
	}
}

func (f *fakeResolver) LookupIP(ctx context.Context, network, host string) ([]net.IP, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if host != "api.strata.svc.cluster.local" {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return f.ips, f.err
}

// sameportBackends starts n API nodes on 127.0.0.1, 127.0.0.2, ... sharing
// one port, as the pods behind a headless service do.
func samePortBackends(t *testing.T, n int) (port int, names []string) {
	t.Helper()
	for try := 0; try < 20; try++ {
		var lns []net.Listener
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		port = ln.Addr().(*net.TCPAddr).Port
		for i := 2; i <= n; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", i, port))
			if err != nil {
				break
			}
			lns = append(lns, l)
		}
		if len(lns) < n {
			for _, l := range lns {
				l.Close()
			}
			continue
		}
		for i, l := range lns {
			name := "127.0.0." + strconv.Itoa(i+1)
			names = append(names, name)
			srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, `{"backend":%q}`, name)
			})}}
			srv.Start()
			t.Cleanup(srv.Close)
		}
		return port, names
	}
	t.Skip("could not bind one port on several loopback addresses")
	return 0, nil
}

func TestDNSDiscovery(t *testing.T) {
	port, _ := samePortBackends(t, 3)
	res := &fakeResolver{}
	res.set(nil, "127.0.0.1", "127.0.0.2")
	g, gw := startGateway(t, Config{
		DiscoverDNS:      "api.strata.svc.cluster.local",
		DiscoverPort:     port,
		DiscoverInterval: 20 * time.Millisecond,
		Resolver:         res,
		HealthInterval:   -1,
	})
	cl := client(t)
	seen := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			code, body := get(t, cl, gw.URL+"/")
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			got[backendOf(t, body)]++
		}
		return got
	}
	upstreams := func() []string {
		var s []string
		for _, u := range g.Status().Upstreams {
			s = append(s, u.URL)
		}
		return s
	}
	url := func(ip string) string { return "http://" + net.JoinHostPort(ip, strconv.Itoa(port)) }

	eventually(t, 2*time.Second, "the first lookup", func() bool { return len(upstreams()) == 2 })
	if got := seen(10); got["127.0.0.1"] != 5 || got["127.0.0.2"] != 5 {
		t.Fatalf("spread over the discovered pair: %v", got)
	}

	// A pod goes, another comes.
	res.set(nil, "127.0.0.3", "127.0.0.2")
	eventually(t, 2*time.Second, "the pool to follow DNS", func() bool {
		u := upstreams()
		return len(u) == 2 && u[0] == url("127.0.0.2") && u[1] == url("127.0.0.3")
	})
	if got := seen(10); got["127.0.0.2"] != 5 || got["127.0.0.3"] != 5 {
		t.Fatalf("spread after the change: %v", got)
	}

	// A failing lookup keeps the last set.
	res.set(errors.New("server misbehaving"))
	eventually(t, 2*time.Second, "the error to show", func() bool { return g.Status().Discovery.LastError != "" })
	if u := upstreams(); len(u) != 2 {
		t.Fatalf("after a failed lookup the pool is %v", u)
	}
	if got := seen(4); got["127.0.0.2"]+got["127.0.0.3"] != 4 {
		t.Fatalf("after a failed lookup: %v", got)
	}
}

func TestDiscoveryKeepsStaticAndState(t *testing.T) {
	static := newBackend(t, "static", nil)
	res := &fakeResolver{}
	res.set(nil, "127.0.0.1")
	g, err := New(Config{
		Upstreams:    []string{static.url},
		DiscoverDNS:  "api.strata.svc.cluster.local",
		DiscoverPort: 9,
		Resolver:     res,
		Logger:       testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	if err := g.refreshDiscovery(ctx); err != nil {
		t.Fatal(err)
	}
	ups := g.pool.list()
	if len(ups) != 2 || ups[0].key != static.url || ups[1].key != "http://127.0.0.1:9" {
		t.Fatalf("pool %v", g.Status().Upstreams)
	}
	disc := ups[1]
	disc.inFlight.Add(1) // state an upstream carries across refreshes
	res.set(nil, "127.0.0.1", "::1")
	if err := g.refreshDiscovery(ctx); err != nil {
		t.Fatal(err)
	}
	ups = g.pool.list()
	if len(ups) != 3 || ups[1] != disc || ups[2].key != "http://[::1]:9" {
		t.Fatalf("pool after adding ::1: %v", g.Status().Upstreams)
	}
	res.set(nil)
	if err := g.refreshDiscovery(ctx); err == nil {
		t.Fatal("an empty answer was taken")
	}
	if len(g.pool.list()) != 3 {
		t.Fatal("an empty answer emptied the pool")
	}
}
