package jobs

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if they leave goroutines running. Run
// with STRATA_JOBS_TEST_WORKER set, the test binary is instead a worker
// process of the process tests (see process_test.go).
func TestMain(m *testing.M) {
	if os.Getenv(envWorker) != "" {
		os.Exit(workerProcess())
	}
	goleak.VerifyTestMain(m)
}
