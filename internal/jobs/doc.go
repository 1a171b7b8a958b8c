// Package jobs is a durable job queue in Strata's database: jobs are rows
// of _jobs, written in the caller's transaction (a job enqueued in a
// transaction that rolls back never runs; one in a transaction that
// commits always does), taken by workers under a lease, retried with
// exponential backoff and jitter, and moved to the dead state with every
// attempt's error once their attempts run out. Schedules enqueue jobs on
// cron ticks, once per tick across nodes.
//
// # Workers and leases
//
// A worker takes a job by setting it running with its own name and a lease
// (LeaseTTL). On PostgreSQL the take is UPDATE ... FROM (SELECT ... FOR
// UPDATE SKIP LOCKED), so workers on many nodes share a queue without
// waiting on each other; on SQLite every take, like every other write,
// goes through the store's single writer and its group commit, so one
// node's workers share the queue. While a job runs its node renews the
// lease every LeaseTTL/3; a node that dies stops renewing, and any node
// takes the job back once the lease has expired (counted as a failed
// attempt). Every write a worker makes is fenced by (id, running,
// worker, attempt): a worker that lost its job, to a lease expiry, a
// cancel or a release, changes nothing. Delivery is therefore at least
// once; handlers must be idempotent.
//
// # Why not River
//
// River (github.com/riverqueue/river v0.51.1, with riverdriver/riversqlite
// v0.51.1 and riverdriver/riverdatabasesql v0.51.1; all three resolve here
// and build beside modernc.org/sqlite v1.61.1 without changing it) was
// tried first against store.DB, on both engines:
//
//   - rivermigrate ran on both (8 versions; ~20 ms on SQLite, ~60 ms on
//     PostgreSQL through riverdatabasesql on the pgx stdlib *sql.DB, in a
//     throw-away schema via search_path).
//   - client.InsertTx(ctx, storeTx.Tx, ...) inside db.Write worked: the job
//     ran after a commit and not after a rollback, also with 500
//     concurrent writers sharing SQLite group commits (River's own
//     savepoints nest inside the batcher's).
//   - Workers ran on both without deadlocking: 500 jobs whose handlers
//     write through db.Write completed, under -race too.
//
// It was not adopted because of what it lacks or does differently here:
//
//   - No per-job heartbeat. Stuck jobs are rescued only by the elected
//     leader's rescuer, which scans every 30 s (JobRescuerIntervalDefault,
//     not configurable) for jobs running longer than one global
//     RescueStuckJobsAfter (which must be at least JobTimeout). A long job
//     cannot extend its lease, and a dead worker's job waits for that
//     global bound rather than a short lease; a test of it takes >30 s.
//   - On SQLite, riversqlite needs the writer *sql.DB itself: its fetches,
//     completions (one row per statement, as its docs say) and
//     maintenance run as their own transactions on the one connection,
//     beside the group-commit batcher rather than through it. They only
//     serialize with it (no deadlock seen), but 500 jobs took ~2.9 s
//     (~170 jobs/s); and a handler that held a River transaction while
//     calling db.Write would deadlock on the single connection.
//   - riverdatabasesql has no LISTEN/NOTIFY (poll only), priorities are
//     1-4, uniqueness is by args/period/queue rather than a caller's key,
//     and rescued jobs are always charged an attempt. It also adds eleven
//     modules (river, riverdriver, rivershared, rivertype, the drivers,
//     lib/pq, four tidwall packages).
//
// The queue here (about 2,000 lines with its cron parser and HTTP API)
// goes through store.DB for every write and has the lease semantics above.
package jobs
