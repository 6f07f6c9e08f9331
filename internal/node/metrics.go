package node

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pbxfleet/pbxfleet/events"
)

// metricsNamespace and metricsSubsystem prefix the agent's metric names:
// pbxfleet_agent_*.
const (
	metricsNamespace = "pbxfleet"
	metricsSubsystem = "agent"
)

// verificationBuckets cover a reload (tens of ms) up to a verify that waits for
// qualify and retries the probe until its 30 s default deadline.
var verificationBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}

// WithMetrics registers the agent's Prometheus metrics on reg, every series
// labelled with the agent's node and role. New returns an error when reg
// already holds them (one agent per registry).
func WithMetrics(reg prometheus.Registerer) Option { return func(a *Agent) { a.metricsReg = reg } }

// agentMetrics are one agent's metrics. A nil *agentMetrics records nothing, so
// an agent without WithMetrics pays nothing.
type agentMetrics struct {
	applies   *prometheus.CounterVec
	rollbacks prometheus.Counter
	phase     *prometheus.HistogramVec
	revision  prometheus.Gauge
	rtt       prometheus.Gauge
	reachable prometheus.Gauge
	drift     prometheus.Gauge
	probes    *prometheus.CounterVec
}

// newAgentMetrics registers the metrics of node (role role, agent version
// version) on reg. It returns an error when one is already registered.
func newAgentMetrics(reg prometheus.Registerer, node, role, version string) (*agentMetrics, error) {
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"node": node, "role": role}, reg)
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help}
	}
	m := &agentMetrics{
		applies: prometheus.NewCounterVec(prometheus.CounterOpts(opts("applies_total",
			"Desired-state revisions handled, by outcome (converged, failed, rolled_back, rejected).")), []string{"outcome"}),
		rollbacks: prometheus.NewCounter(prometheus.CounterOpts(opts("rollbacks_total",
			"Applies that failed verification and restored the previous files."))),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "verification_duration_seconds",
			Help:    "Time spent reloading Asterisk (phase reload) and verifying the trunk (phase verify).",
			Buckets: verificationBuckets,
		}, []string{"phase"}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts(opts("last_converged_revision",
			"The revision this host runs: the last one that converged (0: none)."))),
		rtt: prometheus.NewGauge(prometheus.GaugeOpts(opts("trunk_rtt_seconds",
			"Qualify round trip of the trunk at the last status refresh (0 when unknown)."))),
		reachable: prometheus.NewGauge(prometheus.GaugeOpts(opts("trunk_reachable",
			"1 when the trunk answered qualify at the last status refresh, else 0."))),
		drift: prometheus.NewGauge(prometheus.GaugeOpts(opts("drift",
			"1 when a managed file was changed outside pbxfleet, at the last status refresh, else 0."))),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts(opts("probes_total",
			"Probe calls placed, by verdict (docs/asterisk.md#the-probe-call).")), []string{"verdict"}),
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("build_info",
		"Always 1; the agent's version.")), []string{"version"})
	info.WithLabelValues(version).Set(1)
	// Every label value exists from the start, so rates and alerts see 0, not nothing.
	for _, o := range []events.Outcome{events.OutcomeConverged, events.OutcomeFailed, events.OutcomeRolledBack, events.OutcomeRejected} {
		m.applies.WithLabelValues(string(o))
	}
	for _, p := range []string{events.PhaseReload, events.PhaseVerify} {
		m.phase.WithLabelValues(p)
	}
	for _, v := range []string{VerdictTrunkWorks, VerdictAuthOrFarTrunk, VerdictAnswered, VerdictNoResult, VerdictOther} {
		m.probes.WithLabelValues(v)
	}
	for _, c := range []prometheus.Collector{m.applies, m.rollbacks, m.phase, m.revision, m.rtt, m.reachable, m.drift, m.probes, info} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics of %s: %w", node, err)
		}
	}
	return m, nil
}

// initMetrics registers the metrics asked for with WithMetrics.
func (a *Agent) initMetrics() error {
	if a.metricsReg == nil {
		return nil
	}
	m, err := newAgentMetrics(a.metricsReg, a.node, a.role, a.version)
	if err != nil {
		return err
	}
	a.metrics, a.ver.metrics = m, m
	return nil
}

// observeResult counts a result the agent publishes.
func (m *agentMetrics) observeResult(res events.Result) {
	if m == nil {
		return
	}
	m.applies.WithLabelValues(string(res.Outcome)).Inc()
	if res.Outcome == events.OutcomeConverged {
		m.revision.Set(float64(res.Revision))
	}
}

// rolledBack counts a rollback.
func (m *agentMetrics) rolledBack() {
	if m != nil {
		m.rollbacks.Inc()
	}
}

// observePhase records the time since start for phase (events.PhaseReload or
// events.PhaseVerify); it is meant for defer.
func (m *agentMetrics) observePhase(phase string, start time.Time) {
	if m != nil {
		m.phase.WithLabelValues(phase).Observe(time.Since(start).Seconds())
	}
}

// probe counts one probe call by its verdict.
func (m *agentMetrics) probe(verdict string) {
	if m != nil {
		m.probes.WithLabelValues(verdict).Inc()
	}
}

// observeStatus records a status refresh.
func (m *agentMetrics) observeStatus(st events.Status) {
	if m == nil {
		return
	}
	m.revision.Set(float64(st.AppliedRevision))
	m.rtt.Set(st.Trunk.RTTMS / 1000)
	m.reachable.Set(boolFloat(st.Trunk.Reachable))
	m.drift.Set(boolFloat(st.Drift))
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
