package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// dialect is how one target spells the records API.
type dialect struct {
	// records is the path of a collection's records; a record is at
	// records(c) + "/" + id.
	records func(collection string) string
	// list and expand are the query strings of the list and expand
	// scenarios: 50 published posts with views >= 500, most viewed first,
	// no total; expand also inlines each post's author.
	list, expand string
}

// instance is a running target: its process, its address and how to
// call it.
type instance struct {
	proc *process
	base string // http://127.0.0.1:PORT
	auth string // the superuser's Authorization header, if any
	// pprof is http://ADDR of the instance's /debug/pprof/ when it serves
	// profiles; "" when not.
	pprof string
	dialect
}

// member is a signed-in member of the members auth collection.
type member struct {
	id    string   // the member's record id
	auth  string   // the Authorization header with the member's token
	posts []string // the ids of the member_posts the member wrote
	made  *pool    // the member_posts its creates made, for delete-owner
}

// ownPosts gives each member the ids of its member_posts: ids[i] is the
// post that memberPostBodies wrote for member i mod len(ms).
func ownPosts(ms []member, ids []string) {
	for i, id := range ids {
		m := &ms[i%len(ms)]
		m.posts = append(m.posts, id)
	}
}

// newClient returns an HTTP client that keeps up to conns connections
// alive to one host. Compression is off, so no target pays for gzip.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// call sends one JSON request as the superuser and decodes a 2xx answer
// into out (when not nil); any other status is an error that quotes the
// answer.
func (in *instance) call(ctx context.Context, c *http.Client, method, path string, body []byte, out any) error {
	return in.callAs(ctx, c, in.auth, method, path, body, out)
}

// callAs is call with the Authorization header auth; "" sends none.
func (in *instance) callAs(ctx context.Context, c *http.Client, auth, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, in.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, clip(b, 300))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// createEach creates one record per body with POST, conns at a time, and
// returns the new ids in the order of bodies.
func (in *instance) createEach(ctx context.Context, collection string, bodies [][]byte, conns int) ([]string, error) {
	c := newClient(conns)
	defer c.CloseIdleConnections()
	ids := make([]string, len(bodies))
	return ids, parallel(ctx, conns, len(bodies), func(ctx context.Context, i int) error {
		var rec struct{ ID string }
		if err := in.call(ctx, c, http.MethodPost, in.records(collection), bodies[i], &rec); err != nil {
			return err
		}
		ids[i] = rec.ID
		return nil
	})
}

// parallel runs fn(0) ... fn(n-1) on conns goroutines and returns the
// first error; after an error no new call starts.
func parallel(ctx context.Context, conns, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(conns, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// clip shortens b to at most n bytes for an error message.
func clip(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
