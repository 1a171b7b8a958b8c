// Package deploytest checks the monitoring files under deploy/ against a
// real Strata: every metric the Grafana dashboard (deploy/grafana) and the
// Prometheus rules (deploy/prometheus) query must be one that Strata
// exports at GET /metrics, so a renamed or removed metric breaks the build
// instead of a dashboard panel or an alert going quietly blank.
//
// It has only tests. promtool checks and unit-tests the rules themselves
// (scripts/check-deploy).
package deploytest
