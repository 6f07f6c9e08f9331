// Package metrics serves Prometheus metrics for pbxfleet's long-running
// processes: the node agents (their own metrics live in internal/node) and the
// control plane (ControlPlane, below). Each process creates one registry with
// NewRegistry, registers its collectors on it, and serves it with a Server;
// nothing is registered on the client library's global default registry.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every pbxfleet metric name.
const Namespace = "pbxfleet"

// NewRegistry returns a registry for one process, holding the Go runtime and
// process collectors (go_*, process_*).
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}
