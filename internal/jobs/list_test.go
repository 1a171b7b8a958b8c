package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/apperr"
	"github.com/strata-dev/strata/internal/store"
)

// listAll pages through a list by cursor and returns the ids in order.
func listAll(t *testing.T, s *Service, p ListParams) []int64 {
	t.Helper()
	var ids []int64
	for range 100 {
		res, err := s.List(context.Background(), p)
		if err != nil {
			t.Fatalf("List(%+v): %v", p, err)
		}
		for _, j := range res.Jobs {
			ids = append(ids, j.ID)
		}
		if res.More != (res.NextCursor != "") {
			t.Fatalf("more %v with cursor %q", res.More, res.NextCursor)
		}
		if !res.More {
			return ids
		}
		p.Cursor = res.NextCursor
	}
	t.Fatal("the list does not end")
	return nil
}

func TestListFilterSortCursor(t *testing.T) {
	engines(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, fast(db))
		for _, k := range []string{"email.send", "email.digest", "report"} {
			s.Register(k, func(ctx context.Context, j *Job) error { return nil })
		}
		// 30 jobs: kinds in turn, priorities 0-4, every third in queue
		// "slow", every fifth tagged "vip", some finished.
		kinds := []string{"email.send", "email.digest", "report"}
		var all []*Job
		for i := range 30 {
			opts := EnqueueOptions{Priority: i % 5}
			if i%3 == 0 {
				opts.Queue = "slow"
			}
			if i%5 == 0 {
				opts.Tags = []string{"vip"}
			}
			j, err := s.Enqueue(ctx, nil, kinds[i%3], map[string]any{"to": fmt.Sprintf("u%d@example.com", i), "n": i}, opts)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, j)
		}
		// Dead and cancelled jobs, with a finished_at.
		for i, j := range all {
			switch i % 4 {
			case 1:
				if _, err := s.Cancel(ctx, j.ID); err != nil {
					t.Fatal(err)
				}
			case 2:
				err := db.Write(ctx, func(tx *store.Tx) error {
					_, err := tx.ExecContext(ctx, `UPDATE _jobs SET state = 'dead', finished_at = '`+store.Stamp(time.Now())+`' WHERE id = `+fmt.Sprint(j.ID))
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		want := func(keep func(i int, j *Job) bool) []int64 {
			var ids []int64
			for i, j := range all {
				if keep(i, j) {
					ids = append(ids, j.ID)
				}
			}
			return ids
		}
		rev := func(ids []int64) []int64 { ids = slices.Clone(ids); slices.Reverse(ids); return ids }

		dead := want(func(i int, j *Job) bool { return i%4 == 2 })
		deadEmail := want(func(i int, j *Job) bool { return i%4 == 2 && strings.Contains(j.Kind, "email") })
		cases := []struct {
			name string
			p    ListParams
			want []int64
		}{
			{"default newest first", ListParams{Limit: 7}, rev(want(func(int, *Job) bool { return true }))},
			{"state filter", ListParams{Filter: `state = "dead"`, Sort: "id", Limit: 3}, dead},
			{"filter, sort by created", ListParams{Filter: `state = "dead" && kind ~ "EMAIL"`, Sort: "-created", Limit: 2}, rev(deadEmail)},
			{"old params and filter", ListParams{States: []State{StateDead}, Filter: `kind ~ "email"`, Sort: "id", Limit: 1}, deadEmail},
			{"queue param", ListParams{Queues: []string{"slow"}, Sort: "id", Limit: 4}, want(func(i int, j *Job) bool { return i%3 == 0 })},
			{"kind param", ListParams{Kinds: []string{"report"}, Sort: "-id", Limit: 4}, rev(want(func(i int, j *Job) bool { return i%3 == 2 }))},
			{"id as a number", ListParams{Filter: fmt.Sprintf("id = %d || id = '%d'", all[3].ID, all[4].ID)}, rev([]int64{all[3].ID, all[4].ID})},
			{"id range", ListParams{Filter: fmt.Sprintf("id > %d && id <= %d", all[9].ID, all[19].ID), Sort: "id", Limit: 3}, want(func(i int, j *Job) bool { return i > 9 && i <= 19 })},
			{"id in", ListParams{Filter: fmt.Sprintf("id in (%d, %d)", all[0].ID, all[29].ID), Sort: "id"}, []int64{all[0].ID, all[29].ID}},
			{"args", ListParams{Filter: `args.to = "u7@example.com" || args.n >= 28`, Sort: "id"}, []int64{all[7].ID, all[28].ID, all[29].ID}},
			{"tags", ListParams{Filter: `tags ~ "vip"`, Sort: "id", Limit: 2}, want(func(i int, j *Job) bool { return i%5 == 0 })},
			{"finished_at null", ListParams{Filter: `finished_at = null`, Sort: "id", Limit: 5}, want(func(i int, j *Job) bool { return i%4 != 1 && i%4 != 2 })},
			{"created range", ListParams{Filter: `created >= "2000-01-01T00:00:00Z" && created < "2999-01-01T00:00:00Z"`, Sort: "id", Limit: 11}, want(func(int, *Job) bool { return true })},
			{"run_at future", ListParams{Filter: `run_at > "2999-01-01T00:00:00Z"`}, nil},
		}
		for _, tc := range cases {
			got := listAll(t, s, tc.p)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			}
		}

		// Sorts on other keys, nullable ones included, page by cursor
		// through every job once, in order.
		for _, sort := range []string{"priority,-id", "-priority", "finished_at", "-finished_at,kind", "kind,-created", "-args.n", "queue,attempted_by"} {
			ids := listAll(t, s, ListParams{Sort: sort, Limit: 4})
			one := listAll(t, s, ListParams{Sort: sort, Limit: 500})
			if !slices.Equal(ids, one) || len(ids) != len(all) {
				t.Errorf("sort %s: paged %v, in one page %v", sort, ids, one)
			}
		}
		res, err := s.List(ctx, ListParams{Sort: "-priority", Limit: 30})
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(res.Jobs); i++ {
			a, b := res.Jobs[i-1], res.Jobs[i]
			if a.Priority < b.Priority || a.Priority == b.Priority && a.ID < b.ID {
				t.Errorf("sort -priority: job %d (%d) before job %d (%d)", a.ID, a.Priority, b.ID, b.Priority)
			}
		}

		// Bad parameters are Invalid errors naming the parameter.
		first, err := s.List(ctx, ListParams{Filter: `state = "dead"`, Limit: 1})
		if err != nil || first.NextCursor == "" {
			t.Fatal(err, first)
		}
		body, sig, _ := strings.Cut(first.NextCursor, ".")
		tampered := body[:len(body)-2] + "xx." + sig
		for _, tc := range []struct {
			p     ListParams
			field string
		}{
			{ListParams{Filter: `state = `}, "filter"},
			{ListParams{Filter: `nosuch = 1`}, "filter"},
			{ListParams{Filter: `priority = "high"`}, "filter"},
			{ListParams{Filter: `updated > "2020-01-01T00:00:00Z"`}, "filter"},
			{ListParams{Filter: `id ~ "4"`}, "filter"},
			{ListParams{Filter: `id = 1.5`}, "filter"},
			{ListParams{Filter: `id = "x"`}, "filter"},
			{ListParams{Filter: `kind = @request.auth.id`}, "filter"},
			{ListParams{Sort: "nosuch"}, "sort"},
			{ListParams{Sort: "updated"}, "sort"},
			{ListParams{Sort: "tags"}, "sort"},
			{ListParams{Sort: "id,id"}, "sort"},
			{ListParams{Cursor: "garbage"}, "cursor"},
			{ListParams{Cursor: tampered, Filter: `state = "dead"`}, "cursor"},
			{ListParams{Cursor: first.NextCursor, Filter: `state = "cancelled"`}, "cursor"},
			{ListParams{Cursor: first.NextCursor, Filter: `state = "dead"`, Sort: "kind"}, "cursor"},
			{ListParams{Cursor: first.NextCursor, Filter: `state = "dead"`, Kinds: []string{"report"}}, "cursor"},
			{ListParams{States: []State{"lost"}}, "state"},
			{ListParams{Limit: 501}, "limit"},
			{ListParams{Offset: -1}, "offset"},
		} {
			_, err := s.List(ctx, tc.p)
			var ae *apperr.Error
			if !errors.As(err, &ae) || ae.Kind != apperr.Invalid || len(ae.Fields) != 1 || ae.Fields[0].Field != tc.field {
				t.Errorf("List(%+v) = %v, want an Invalid error on %s", tc.p, err, tc.field)
			}
		}
		// A cursor from a service with another secret is refused.
		other := newService(t, fast(db))
		if _, err := other.List(ctx, ListParams{Filter: `state = "dead"`, Cursor: first.NextCursor}); apperr.KindOf(err) != apperr.Invalid {
			t.Errorf("cursor of another secret: %v", err)
		}
		// One with the same secret is accepted.
		cfg := fast(db)
		cfg.Secret = s.secret
		same := newService(t, cfg)
		if res, err := same.List(ctx, ListParams{Filter: `state = "dead"`, Cursor: first.NextCursor}); err != nil || len(res.Jobs) != len(dead)-1 {
			t.Errorf("cursor of the same secret: %v", err)
		}
	})
}
