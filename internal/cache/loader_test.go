package cache_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/cache"
	"github.com/strata-dev/strata/internal/cache/memory"
)

// down is a cache whose every operation fails, as Redis does when it is
// unreachable.
type down struct{ cache.Cache }

var errDown = errors.New("connection refused")

func (down) Get(context.Context, string) ([]byte, bool, error) { return nil, false, errDown }
func (down) Stamp(context.Context, ...string) (cache.Stamp, error) {
	return cache.Stamp{}, errDown
}
func (down) SetStamped(context.Context, string, []byte, time.Duration, cache.Stamp) error {
	return errDown
}

func TestLoaderTreatsCacheErrorsAsMisses(t *testing.T) {
	var logged atomic.Int32
	l := cache.NewLoader(cache.LoaderConfig{Cache: down{}, OnError: func(err error) {
		if !errors.Is(err, errDown) {
			t.Errorf("OnError(%v): not the cache's error", err)
		}
		logged.Add(1)
	}})
	for i := range 2 {
		v, err := l.GetOrLoad(t.Context(), "k", time.Minute, []string{"t"}, func(context.Context) ([]byte, error) {
			return []byte("from source"), nil
		})
		if err != nil || string(v) != "from source" {
			t.Fatalf("GetOrLoad #%d = %q, %v; want the source's value", i, v, err)
		}
	}
	// Get and Stamp fail on each call; with no stamp nothing is written.
	if got := l.Errors(); got != 4 {
		t.Fatalf("Errors() = %d, want 4", got)
	}
	if logged.Load() != 4 {
		t.Fatalf("OnError called %d times, want 4", logged.Load())
	}
	if l.Loads() != 2 {
		t.Fatalf("Loads() = %d, want 2", l.Loads())
	}
}

func TestLoaderWaiterLeavesOnCancel(t *testing.T) {
	c, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := cache.NewLoader(cache.LoaderConfig{Cache: c})

	release := make(chan struct{})
	loading := make(chan struct{})
	firstDone := make(chan error, 1)
	load := func(ctx context.Context) ([]byte, error) {
		close(loading)
		<-release
		// The load outlives the cancelled caller.
		return []byte("v"), ctx.Err()
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		_, err := l.GetOrLoad(ctx, "k", time.Minute, nil, load)
		firstDone <- err
	}()
	<-loading
	cancel()
	if err := <-firstDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", err)
	}
	close(release)
	// The shared load was not cancelled with its first caller: its value
	// reaches the cache.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if v, ok, _ := c.Get(t.Context(), "k"); ok && string(v) == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the load's value never reached the cache")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDedup(t *testing.T) {
	got := cache.Dedup([]string{"a", "b", "a", "c", "b"})
	want := []string{"a", "b", "c"}
	if len(got) != len(want) {
		t.Fatalf("Dedup = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Dedup = %q, want %q", got, want)
		}
	}
}

func TestStampValid(t *testing.T) {
	for _, tc := range []struct {
		s    cache.Stamp
		want bool
	}{
		{cache.Stamp{}, true},
		{cache.Stamp{Tags: []string{"a"}, Gens: []uint64{1}}, true},
		{cache.Stamp{Tags: []string{"a"}}, false},
		{cache.Stamp{Tags: []string{"a"}, Gens: []uint64{0}}, false},
	} {
		if got := tc.s.Valid(); got != tc.want {
			t.Errorf("%+v.Valid() = %v, want %v", tc.s, got, tc.want)
		}
	}
}
