package jobs

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

// fast is a configuration with timings small enough for tests.
func fast(db *store.DB) Config {
	return Config{
		DB:           db,
		Node:         "test",
		PollInterval: 20 * time.Millisecond,
		LeaseTTL:     time.Second,
		ReapInterval: 50 * time.Millisecond,
		RetryBase:    20 * time.Millisecond,
		RetryMax:     200 * time.Millisecond,
	}
}

func newService(t testing.TB, cfg Config) *Service {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// start starts s and stops it when the test ends.
func start(t testing.TB, s *Service) {
	t.Helper()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Stop(ctx)
	})
}

// crash stops s as a dying process would: no more fetching, no lease
// renewal, nothing released and nothing its handlers return recorded.
func crash(s *Service) {
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	close(r.stop)
	r.loops.Wait()
	s.mu.Lock()
	for _, a := range s.running {
		a.cancel(errLeaseLost)
	}
	s.mu.Unlock()
	r.workers.Wait()
	close(r.hbStop)
	<-r.hbDone
	s.mu.Lock()
	s.run = nil
	s.mu.Unlock()
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitState(t testing.TB, s *Service, id int64, want State) *Job {
	t.Helper()
	var j *Job
	waitFor(t, 10*time.Second, "job to be "+string(want), func() bool {
		var err error
		j, err = s.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return j.State == want
	})
	return j
}

// engines runs f once per engine, in parallel.
func engines(t *testing.T, f func(t *testing.T, db *store.DB)) {
	for _, engine := range storetest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			f(t, storetest.Open(t, engine))
		})
	}
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// histogramCount sums the observations of the histogram name in reg.
func histogramCount(t testing.TB, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range fams {
		if f.GetName() == name {
			for _, m := range f.Metric {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}
