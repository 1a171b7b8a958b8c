package jobs

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/store"
	"github.com/strata-dev/strata/internal/storetest"
)

// BenchmarkEnqueueTx: one job per transaction, from one goroutine and
// from many (which share commits on SQLite).
func BenchmarkEnqueueTx(b *testing.B) {
	for _, engine := range storetest.Engines(b) {
		for _, mode := range []string{"serial", "parallel"} {
			b.Run(engine+"/"+mode, func(b *testing.B) {
				ctx := context.Background()
				db := storetest.Open(b, engine)
				s := newService(b, fast(db))
				s.Register("bench", func(ctx context.Context, j *Job) error { return nil })
				enqueue := func() {
					err := db.Write(ctx, func(tx *store.Tx) error {
						_, err := s.Enqueue(ctx, tx, "bench", map[string]int{"n": 1}, EnqueueOptions{})
						return err
					})
					if err != nil {
						b.Error(err)
					}
				}
				b.ResetTimer()
				if mode == "serial" {
					for b.Loop() {
						enqueue()
					}
				} else {
					b.SetParallelism(8)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							enqueue()
						}
					})
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
			})
		}
	}
}

// BenchmarkEndToEnd: b.N jobs enqueued in transactions of 100, then
// worked by 16 workers until all are completed.
func BenchmarkEndToEnd(b *testing.B) {
	for _, engine := range storetest.Engines(b) {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, engine)
			cfg := fast(db)
			cfg.Queues = map[string]int{"default": 16}
			s := newService(b, cfg)
			var done atomic.Int64
			s.Register("bench", func(ctx context.Context, j *Job) error {
				done.Add(1)
				return nil
			})
			for i := 0; i < b.N; i += 100 {
				err := db.Write(ctx, func(tx *store.Tx) error {
					for k := i; k < min(i+100, b.N); k++ {
						if _, err := s.Enqueue(ctx, tx, "bench", nil, EnqueueOptions{}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			start := time.Now()
			if err := s.Start(ctx); err != nil {
				b.Fatal(err)
			}
			for done.Load() < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
			el := time.Since(start)
			b.StopTimer()
			stop, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			s.Stop(stop)
			b.ReportMetric(float64(b.N)/el.Seconds(), "jobs/s")
		})
	}
}
