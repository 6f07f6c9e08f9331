package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/metrics"
)

// DefaultRefresh is how often Metrics.Run reads the orchestrator's state.
const DefaultRefresh = 5 * time.Second

// refreshTimeout bounds one refresh when the caller set no deadline.
const refreshTimeout = 5 * time.Second

// RolloutSource returns the header (no site records) of the active rollout
// or, when none is active, of the last one started; *Engine is one. It
// returns an error wrapping ErrRolloutNotFound when there has never been a
// rollout. A refresh every few seconds must not read a thousand site keys.
type RolloutSource interface {
	CurrentHeader(ctx context.Context) (Rollout, error)
}

// phases are the rollout phases exported even when no rollout is in them, so
// that a dashboard sees 0 rather than no series.
var phases = []Phase{
	PhaseRunning, PhasePaused, PhaseRollingBack, PhaseAborting,
	PhaseSucceeded, PhaseFailed, PhaseRolledBack, PhaseAborted,
}

// Metrics exports the orchestrator's view of the current (or last)
// rollout, read from its persisted state every refresh:
//
//	pbxfleet_rollout_phase{phase}           1 for the rollout's phase, 0 for the others
//	pbxfleet_rollout_sites{outcome}         the rollout's sites by outcome (Counters)
//	pbxfleet_rollout_wave                   the current wave, 1-based (0: no rollout)
//	pbxfleet_results_received_total         results the PBXFLEET_RESULTS stream has received
//	pbxfleet_control_plane_refresh_errors_total  refreshes that could not read the state
//
// Reading the persisted state rather than the engine's memory makes the
// figures the same whichever process drives the rollout.
type Metrics struct {
	src      RolloutSource
	js       jetstream.JetStream
	interval time.Duration
	log      *slog.Logger

	phase *prometheus.GaugeVec
	sites *prometheus.GaugeVec
	wave  prometheus.Gauge
	errs  prometheus.Counter
	// mu guards results (the results stream's last sequence) and known (the
	// phases exported so far).
	mu      sync.Mutex
	results uint64
	known   map[Phase]bool
}

// MetricsOption configures a Metrics.
type MetricsOption func(*Metrics)

// MetricsRefresh sets how often Run refreshes; default DefaultRefresh.
func MetricsRefresh(d time.Duration) MetricsOption {
	return func(c *Metrics) {
		if d > 0 {
			c.interval = d
		}
	}
}

// MetricsLogger sets the logger of refresh failures; default discards.
func MetricsLogger(l *slog.Logger) MetricsOption { return func(c *Metrics) { c.log = l } }

// MetricsResults exports pbxfleet_results_received_total from the results
// stream's last sequence, read through js.
func MetricsResults(js jetstream.JetStream) MetricsOption {
	return func(c *Metrics) { c.js = js }
}

// NewMetrics registers the control plane's metrics on reg and returns the
// exporter; call Run (or Refresh) to fill them. It returns an error when a
// metric is already registered on reg.
func NewMetrics(reg prometheus.Registerer, src RolloutSource, opts ...MetricsOption) (*Metrics, error) {
	c := &Metrics{
		src: src, interval: DefaultRefresh, log: slog.New(slog.DiscardHandler),
		known: map[Phase]bool{},
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: "rollout", Name: "phase",
			Help: "1 for the phase of the current (or last) rollout, 0 for the other phases.",
		}, []string{"phase"}),
		sites: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: "rollout", Name: "sites",
			Help: "Sites of the current (or last) rollout by outcome.",
		}, []string{"outcome"}),
		wave: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: "rollout", Name: "wave",
			Help: "Current wave of the current (or last) rollout, 1-based; 0 when there has been no rollout.",
		}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "control_plane", Name: "refresh_errors_total",
			Help: "Refreshes of these metrics that could not read the rollout state.",
		}),
	}
	for _, o := range opts {
		o(c)
	}
	for _, p := range phases {
		c.known[p] = true
		c.phase.WithLabelValues(string(p))
	}
	c.setSites(Counters{})
	cs := []prometheus.Collector{c.phase, c.sites, c.wave, c.errs}
	if c.js != nil {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "results_received_total",
			Help: "Results the " + events.StreamResults + " stream has received (its last sequence).",
		}, func() float64 {
			c.mu.Lock()
			defer c.mu.Unlock()
			return float64(c.results)
		}))
	}
	for _, col := range cs {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("register control plane metrics: %w", err)
		}
	}
	return c, nil
}

// Run refreshes the metrics now and then every interval until ctx ends, and
// returns nil then. A failed refresh is logged and counted, and the metrics
// keep their last values.
func (c *Metrics) Run(ctx context.Context) error {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("refresh control plane metrics", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh reads the current rollout (and the results stream) once and updates
// the metrics. It returns the read errors joined; when there has never been a
// rollout the rollout metrics are zero and that is not an error.
func (c *Metrics) Refresh(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, refreshTimeout)
		defer cancel()
	}
	var errs []error
	r, err := c.src.CurrentHeader(ctx)
	switch {
	case errors.Is(err, ErrRolloutNotFound):
		c.setRollout(Rollout{})
	case err != nil:
		errs = append(errs, fmt.Errorf("refresh control plane metrics: %w", err))
	default:
		c.setRollout(r)
	}
	if c.js != nil {
		s, err := c.js.Stream(ctx, events.StreamResults)
		if err != nil {
			errs = append(errs, fmt.Errorf("refresh control plane metrics: stream %s: %w", events.StreamResults, err))
		} else {
			c.mu.Lock()
			// A counter never goes down: a recreated stream restarts its
			// sequence, and the figure waits until it passes the old one.
			c.results = max(c.results, s.CachedInfo().State.LastSeq)
			c.mu.Unlock()
		}
	}
	if len(errs) > 0 {
		c.errs.Inc()
	}
	return errors.Join(errs...)
}

// setRollout exports r; the zero Rollout means "no rollout yet".
func (c *Metrics) setRollout(r Rollout) {
	c.mu.Lock()
	if r.Phase != "" {
		c.known[r.Phase] = true // a phase added after the list above was written
	}
	for p := range c.known {
		v := 0.0
		if p == r.Phase {
			v = 1
		}
		c.phase.WithLabelValues(string(p)).Set(v)
	}
	c.mu.Unlock()
	c.setSites(r.Counters)
	if r.ID == "" {
		c.wave.Set(0)
	} else {
		c.wave.Set(float64(r.Wave))
	}
}

func (c *Metrics) setSites(n Counters) {
	for outcome, v := range map[SiteOutcome]int{
		SitePending: n.Pending, SiteInFlight: n.InFlight,
		SiteConverged: n.Converged, SiteFailed: n.Failed,
		SiteUnreachable: n.Unreachable, SiteSkipped: n.Skipped,
		SiteCancelled: n.Cancelled,
	} {
		c.sites.WithLabelValues(string(outcome)).Set(float64(v))
	}
}
