// Package clustertest runs Strata as a cluster on one machine and tests
// what only a cluster can show: three API nodes, a worker and a gateway,
// each its own strata process, built from this tree, on one PostgreSQL,
// one Redis and one NATS server with JetStream.
//
// The tests are slow (about 30 to 60 seconds: a build of the binary, a
// database, five processes, a node killed under load), so they run only
// when STRATA_TEST_CLUSTER=1. scripts/test runs them in a step of their
// own after the main go test, where they are skipped, with the engines it
// starts:
//
//	STRATA_TEST_CLUSTER=1 \
//	STRATA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
//	STRATA_TEST_REDIS_URL=redis://127.0.0.1:6379/0 \
//	STRATA_TEST_NATS_URL=nats://127.0.0.1:4222 \
//	go test -count=1 ./deploy/clustertest/
//
// Each run creates a database of its own on that server and drops it at
// the end; collection names are random, so runs and other tests sharing
// the Redis and the NATS server do not see each other's records. With
// STRATA_TEST_CLUSTER=1 and an engine missing the tests are skipped, or
// fail under CI.
//
// The gateway benchmark (TestGatewayBenchmark: one API node directly,
// through the Strata gateway and through nginx, then one to three nodes
// behind the gateway) runs only by hand, with STRATA_CLUSTER_BENCH=1; see
// bench_test.go.
//
// deploy/local-cluster starts the same cluster, with a PostgreSQL replica,
// for a person to use.
package clustertest
