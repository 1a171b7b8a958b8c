package config

import (
	"fmt"

	"github.com/strata-dev/strata/internal/jobs"
)

func checkJobQueues(c *Config) string {
	queues, err := jobs.ParseQueues(c.JobQueues)
	if err != nil {
		return `is not a list of queues such as "default=4, emails=2": ` + err.Error()
	}
	n, named := queues[jobs.DefaultQueue]
	if src := c.Source("job_workers"); named && src != "" && src != sourceDefault && n != c.JobWorkers {
		return fmt.Sprintf("gives the default queue %d workers and job_workers gives it %d (from %s); set it in one of them", n, c.JobWorkers, src)
	}
	return ""
}

func checkCron(c *Config) string {
	if _, err := jobs.ParseCron(c.Cron); err != nil {
		return `is not a list of schedules such as "nightly: 0 3 * * * report.nightly; cleanup: @every 1h cleanup.run": ` + err.Error()
	}
	return ""
}

// JobQueueWorkers returns the queues a worker node works and their
// workers: those job_queues names, and the default queue with job_workers
// unless job_queues names it. A queue given 0 workers is left out. c must
// be valid.
func (c Config) JobQueueWorkers() map[string]int {
	queues, _ := jobs.ParseQueues(c.JobQueues)
	if queues == nil {
		queues = map[string]int{}
	}
	if _, named := queues[jobs.DefaultQueue]; !named {
		queues[jobs.DefaultQueue] = c.JobWorkers
	}
	for q, n := range queues {
		if n == 0 {
			delete(queues, q)
		}
	}
	return queues
}

// CronEntries returns the schedules of cron. c must be valid.
func (c Config) CronEntries() []jobs.CronEntry {
	entries, _ := jobs.ParseCron(c.Cron)
	return entries
}
