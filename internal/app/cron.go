package app

import (
	"fmt"
	"slices"
	"strings"
)

// scheduleCron declares the schedules of the cron setting on the job
// queue. It runs when a worker starts, once every kind is registered, so
// that a schedule naming a kind no code registers stops the start with an
// error that says which, rather than enqueueing jobs that could never run.
func (a *App) scheduleCron() error {
	entries := a.cfg.CronEntries()
	if len(entries) == 0 {
		return nil
	}
	kinds := a.jobs.Kinds()
	for _, e := range entries {
		if !slices.Contains(kinds, e.Kind) {
			return fmt.Errorf("config: cron schedule %s names job kind %q, which nothing registers (registered kinds: %s)",
				e.Name, e.Kind, strings.Join(kinds, ", "))
		}
		if err := a.jobs.Schedule(e.Name, e.Spec, e.Kind, nil); err != nil {
			return fmt.Errorf("config: cron schedule %s: %w", e.Name, err)
		}
		a.log.Info("cron schedule", "schedule", e.Name, "spec", e.Spec, "kind", e.Kind)
	}
	return nil
}
