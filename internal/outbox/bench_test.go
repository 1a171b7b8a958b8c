package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/outbox"
	"github.com/strata-dev/strata/internal/records"
	"github.com/strata-dev/strata/internal/schema"
	"github.com/strata-dev/strata/internal/storetest"
)

// BenchmarkCreate is the cost the outbox adds to a create: the same
// parallel creates with events off and on (SQLite, group commit).
func BenchmarkCreate(b *testing.B) {
	for _, c := range []struct {
		name   string
		events *outbox.Writer
	}{{"outbox-off", nil}, {"outbox-on", &outbox.Writer{}}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := records.New(ctx, records.Options{DB: storetest.Open(b, "sqlite"), Secret: []byte("k"), Events: c.events})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.CreateCollection(ctx, &schema.Collection{Name: "notes", Fields: []*schema.Field{{Name: "title", Type: schema.Text}}}); err != nil {
				b.Fatal(err)
			}
			body := map[string]json.RawMessage{"title": json.RawMessage(`"a title of some length"`)}
			b.SetParallelism(25) // 50 writers on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Create(ctx, "notes", body, records.WriteOptions{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkRelay is the relay's throughput: b.N committed events published
// to the embedded broker; it reports events per second.
func BenchmarkRelay(b *testing.B) {
	ctx := context.Background()
	db := storetest.Open(b, "sqlite")
	s, err := records.New(ctx, records.Options{DB: db, Secret: []byte("k"), Events: &outbox.Writer{}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.CreateCollection(ctx, &schema.Collection{Name: "notes", Fields: []*schema.Field{{Name: "title", Type: schema.Text}}}); err != nil {
		b.Fatal(err)
	}
	err = parallelN(b.N, 16, func(i int) error {
		_, err := s.Create(ctx, "notes", map[string]json.RawMessage{"title": json.RawMessage(fmt.Sprintf(`"%d"`, i))}, records.WriteOptions{})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	br := embeddedB(b)
	b.ResetTimer()
	start := time.Now()
	r := outbox.NewRelay(outbox.RelayConfig{DB: db, Publisher: br, Poll: time.Millisecond})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(rctx); close(done) }()
	for {
		n, _, err := db.OutboxBacklog(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

func parallelN(n, workers int, fn func(i int) error) error {
	errs := make(chan error, workers)
	next := make(chan int)
	for range workers {
		go func() {
			var err error
			for i := range next {
				if err == nil {
					err = fn(i)
				}
			}
			errs <- err
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
