package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/strata-dev/strata/internal/store"
)

// schedule enqueues a job at every tick of its spec.
type schedule struct {
	name string
	spec *Spec
	kind string
	args json.RawMessage
	next time.Time // the tick to fire next; owned by scheduleLoop
}

// Schedule enqueues a job of kind with args at every tick of spec (see
// Spec for the syntax) while the service runs. Every node may declare the
// same schedules: each tick is enqueued once across them, by the node that
// first moves the schedule's last tick forward in _job_schedules. Ticks
// missed while no node ran are skipped, not caught up. Jobs are tagged
// "cron" and "cron:<name>".
func (s *Service) Schedule(name, spec string, kind string, args any) error {
	if !validName(name) {
		return invalid("schedule name %q: use up to 128 letters, digits and _.:-", name)
	}
	sp, err := ParseSpec(spec)
	if err != nil {
		return invalid("schedule %s: %v", name, err)
	}
	// Check the kind and the arguments now rather than at the first tick.
	j, err := s.prepare(kind, args, EnqueueOptions{})
	if err != nil {
		return fmt.Errorf("schedule %s: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sc := range s.schedules {
		if sc.name == name {
			return invalid("schedule %q declared twice", name)
		}
	}
	s.schedules = append(s.schedules, &schedule{name: name, spec: sp, kind: kind, args: j.Args})
	if s.run != nil {
		select {
		case s.run.schedNew <- struct{}{}:
		default:
		}
	}
	return nil
}

func (s *Service) scheduleLoop(r *runState) {
	defer r.loops.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		scheds := append([]*schedule(nil), s.schedules...)
		s.mu.Unlock()
		now := time.Now()
		wait := time.Minute
		for _, sc := range scheds {
			if sc.next.IsZero() {
				if sc.next = sc.spec.Next(now); sc.next.IsZero() {
					continue // never fires
				}
			}
			if !now.Before(sc.next) {
				if err := s.fire(sc, sc.next); err != nil {
					s.log.Error("jobs: fire schedule; trying again", "schedule", sc.name, "tick", sc.next, "err", err)
					wait = min(wait, time.Second)
					continue
				}
				sc.next = sc.spec.Next(now)
			}
			if !sc.next.IsZero() {
				wait = min(wait, sc.next.Sub(now))
			}
		}
		timer.Reset(max(wait, time.Millisecond))
		select {
		case <-r.stop:
			return
		case <-r.schedNew:
		case <-timer.C:
		}
	}
}

// fire enqueues sc's job for tick unless another node has.
func (s *Service) fire(sc *schedule, tick time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	j, err := s.prepare(sc.kind, sc.args, EnqueueOptions{Tags: []string{"cron", "cron:" + sc.name}})
	if err != nil {
		return err
	}
	return s.db.Write(ctx, func(tx *store.Tx) error {
		a := newArgs(tx.Dialect)
		res, err := tx.ExecContext(ctx, `INSERT INTO _job_schedules (name, last_tick) VALUES (`+a.Add(sc.name)+`, `+a.Add(store.Stamp(tick))+`)
			ON CONFLICT (name) DO UPDATE SET last_tick = excluded.last_tick WHERE _job_schedules.last_tick < excluded.last_tick`, a.Values...)
		if err != nil {
			return fmt.Errorf("claim tick: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // another node fired this tick
		}
		_, err = s.insert(ctx, tx, j)
		return err
	})
}
