// Package telemetry is what an operator sees of Strata: structured logs that
// carry request and trace ids and never a secret, a Prometheus registry that
// components add their metrics to, OpenTelemetry tracing configured by the
// standard OTEL_* variables, and the health report behind /readyz.
//
// Components own their metrics: they take a prometheus.Registerer and create
// what they measure with promauto.With(reg), one line per metric. A nil
// Registerer gives working metrics that are exported nowhere.
package telemetry
