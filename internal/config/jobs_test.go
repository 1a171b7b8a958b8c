package config

import (
	"maps"
	"testing"
)

func TestJobQueueWorkers(t *testing.T) {
	tests := []struct {
		workers int
		queues  string
		want    map[string]int
	}{
		{4, "", map[string]int{"default": 4}},
		{8, "emails=2, reports=1", map[string]int{"default": 8, "emails": 2, "reports": 1}},
		{4, "default=6, emails=2", map[string]int{"default": 6, "emails": 2}},
		{4, "default=0, reports=3", map[string]int{"reports": 3}},
	}
	for _, tt := range tests {
		c := Default()
		c.JobWorkers, c.JobQueues = tt.workers, tt.queues
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := c.JobQueueWorkers(); !maps.Equal(got, tt.want) {
			t.Errorf("job_workers %d, job_queues %q: %v, want %v", tt.workers, tt.queues, got, tt.want)
		}
	}
	c := Default()
	c.Cron = "nightly: 0 3 * * * report.nightly; cleanup: @every 1h cleanup.run"
	if e := c.CronEntries(); len(e) != 2 || e[1].Name != "cleanup" || e[1].Spec != "@every 1h" || e[1].Kind != "cleanup.run" {
		t.Errorf("CronEntries = %+v", e)
	}
}
