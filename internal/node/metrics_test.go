package node

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/metrics"
	"github.com/pbxfleet/pbxfleet/internal/metrics/metricstest"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
)

// metricsEndpoint serves reg on a loopback port until the test ends and
// returns its URL.
func metricsEndpoint(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	srv, err := metrics.Listen("127.0.0.1:0", reg, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); assert.NoError(t, <-done) })
	return srv.URL()
}

// series names one agent metric of node bsas-1.<role> with extra label pairs
// (name, value, ...), labels sorted by name as the client library writes them.
func series(name, role string, extra ...string) string {
	labels := map[string]string{"node": "bsas-1." + role, "role": role}
	for i := 0; i+1 < len(extra); i += 2 {
		labels[extra[i]] = extra[i+1]
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	return "pbxfleet_agent_" + name + "{" + strings.Join(parts, ",") + "}"
}

func TestAgentMetricsAfterRealApply(t *testing.T) {
	srv := natstest.Start(t)
	for _, role := range []string{events.RolePBX, events.RoleOML} {
		t.Run(role, func(t *testing.T) {
			h := newHarness(t, srv, role)
			reg := metrics.NewRegistry()
			url := metricsEndpoint(t, reg)
			h.start(WithMetrics(reg), WithVersion("1.2.3"))
			h.put(1, seedTrunk())
			r := h.nextResult()
			require.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)

			m := func(name string) string { return series(name, role) }
			outcome := func(o events.Outcome) string {
				return series("applies_total", role, "outcome", string(o))
			}
			var got map[string]float64
			// The status refresh right after the apply fills the trunk gauges.
			require.Eventually(t, func() bool {
				got = metricstest.Scrape(t, url)
				return got[m("trunk_reachable")] == 1
			}, 10*time.Second, 50*time.Millisecond)
			assert.Equal(t, 1.0, got[outcome(events.OutcomeConverged)])
			for _, o := range []events.Outcome{events.OutcomeFailed, events.OutcomeRolledBack, events.OutcomeRejected} {
				assert.Equal(t, 0.0, got[outcome(o)], "outcome %s", o)
			}
			assert.Equal(t, 0.0, got[m("rollbacks_total")])
			assert.Equal(t, 1.0, got[m("last_converged_revision")])
			assert.Equal(t, 0.0, got[m("drift")])
			assert.InDelta(t, r.Trunk.RTTMS/1000, got[m("trunk_rtt_seconds")], 0.01)
			assert.Positive(t, got[m("trunk_rtt_seconds")], "the fixtures' qualify answers in a few ms")
			assert.Equal(t, 1.0, got[series("probes_total", role, "verdict", "trunk_works")])
			assert.Equal(t, 0.0, got[series("probes_total", role, "verdict", "auth_or_far_trunk")])
			for _, phase := range []string{events.PhaseReload, events.PhaseVerify} {
				assert.Equal(t, 1.0, got[series("verification_duration_seconds_count", role, "phase", phase)], phase)
				assert.Positive(t, got[series("verification_duration_seconds_sum", role, "phase", phase)], phase)
			}
			assert.Equal(t, 1.0, got[series("build_info", role, "version", "1.2.3")])
		})
	}
}

func TestAgentMetricsCountRollbacksRejectsAndDrift(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.verify = 3 * time.Second
	reg := metrics.NewRegistry()
	url := metricsEndpoint(t, reg)
	h.start(WithMetrics(reg))
	m := func(name string) string { return series(name, events.RolePBX) }
	outcome := func(o events.Outcome) string {
		return series("applies_total", events.RolePBX, "outcome", string(o))
	}

	h.put(1, seedTrunk())
	require.Equal(t, events.OutcomeConverged, h.nextResult().Outcome)
	h.setMode("badsecret") // qualify OK, the probe ends 21: rolled back
	h.put(2, seedTrunk())
	r := h.nextResult()
	require.Equal(t, events.OutcomeRolledBack, r.Outcome)
	h.setMode("ok")
	h.put(1, seedTrunk()) // stale: rejected
	require.Equal(t, events.OutcomeRejected, h.nextResult().Outcome)

	// Someone edits the managed file by hand.
	path := filepath.Join(h.confDir, "pbxfleet_sip.conf")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(b, "nat=force_rport\n"...), 0o644))

	var got map[string]float64
	require.Eventually(t, func() bool {
		got = metricstest.Scrape(t, url)
		return got[m("drift")] == 1
	}, 10*time.Second, 50*time.Millisecond)
	tests := []struct {
		series string
		want   float64
	}{
		{outcome(events.OutcomeConverged), 1},
		{outcome(events.OutcomeRolledBack), 1},
		{outcome(events.OutcomeRejected), 1},
		{outcome(events.OutcomeFailed), 0},
		{m("rollbacks_total"), 1},
		{m("last_converged_revision"), 1}, // revision 1 was restored
		{m("trunk_reachable"), 1},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, got[tt.series], tt.series)
	}
	assert.GreaterOrEqual(t, got[series("probes_total", events.RolePBX, "verdict", "auth_or_far_trunk")], 1.0,
		"the probe of revision 2 was refused (cause 21), at least once before the deadline")
	// Revision 1, revision 2, and the rollback's reload.
	assert.Equal(t, 3.0, got[series("verification_duration_seconds_count", events.RolePBX, "phase", "reload")])
}

func TestWithMetricsRefusesASecondAgentOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	side, err := SideFor(events.RolePBX)
	require.NoError(t, err)
	cfg := Config{Node: "bsas-1.pbx", StateDir: t.TempDir()}
	_, err = New(cfg, side, nil, nil, WithMetrics(reg))
	require.NoError(t, err)
	_, err = New(cfg, side, nil, nil, WithMetrics(reg))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "register metrics of bsas-1.pbx")
}
