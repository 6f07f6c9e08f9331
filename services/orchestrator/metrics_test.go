package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/metrics"
	"github.com/pbxfleet/pbxfleet/internal/metrics/metricstest"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
	"github.com/pbxfleet/pbxfleet/services/planner"
)

// source is a RolloutSource that answers what it holds.
type source struct {
	r   orchestrator.Rollout
	err error
}

func (s *source) CurrentHeader(context.Context) (orchestrator.Rollout, error) { return s.r, s.err }

var errDown = errors.New("kv down")

func phaseKey(p orchestrator.Phase) string { return fmt.Sprintf(`pbxfleet_rollout_phase{phase=%q}`, p) }
func sitesKey(o orchestrator.SiteOutcome) string {
	return fmt.Sprintf(`pbxfleet_rollout_sites{outcome=%q}`, o)
}

func TestControlPlaneExportsCurrentRollout(t *testing.T) {
	paused := orchestrator.Rollout{ID: "r1", Phase: orchestrator.PhasePaused, Wave: 2, Waves: 3,
		Counters: orchestrator.Counters{Sites: 6, Converged: 2, Failed: 1, Unreachable: 1, InFlight: 1, Pending: 1}}
	tests := []struct {
		name      string
		steps     []source // what Current answers at each refresh, in order
		wantErr   bool
		wantPhase orchestrator.Phase // "" : every phase 0
		wantSites map[orchestrator.SiteOutcome]float64
		wantWave  float64
		wantErrs  float64
	}{
		{name: "no rollout yet", steps: []source{{err: fmt.Errorf("current: %w", orchestrator.ErrRolloutNotFound)}},
			wantSites: map[orchestrator.SiteOutcome]float64{orchestrator.SiteConverged: 0, orchestrator.SiteFailed: 0}},
		{name: "paused rollout", steps: []source{{r: paused}}, wantPhase: orchestrator.PhasePaused, wantWave: 2,
			wantSites: map[orchestrator.SiteOutcome]float64{
				orchestrator.SiteConverged: 2, orchestrator.SiteFailed: 1, orchestrator.SiteUnreachable: 1,
				orchestrator.SiteInFlight: 1, orchestrator.SitePending: 1, orchestrator.SiteSkipped: 0,
			}},
		{name: "read error keeps the last values", steps: []source{{r: paused}, {err: errDown}}, wantErr: true,
			wantPhase: orchestrator.PhasePaused, wantWave: 2, wantErrs: 1,
			wantSites: map[orchestrator.SiteOutcome]float64{orchestrator.SiteConverged: 2}},
		{name: "a new phase", steps: []source{{r: orchestrator.Rollout{ID: "r2", Phase: "draining"}}},
			wantPhase: "draining", wantWave: 0, wantSites: map[orchestrator.SiteOutcome]float64{orchestrator.SiteConverged: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := metrics.NewRegistry()
			src := &source{}
			cp, err := orchestrator.NewMetrics(reg, src)
			require.NoError(t, err)
			srv, err := metrics.Listen("127.0.0.1:0", reg, nil)
			require.NoError(t, err)
			metricstest.Serve(t, srv)
			for i, s := range tt.steps {
				*src = s
				err = cp.Refresh(context.Background())
				if i < len(tt.steps)-1 {
					require.NoError(t, err)
				}
			}
			if tt.wantErr {
				require.ErrorIs(t, err, errDown)
			} else {
				require.NoError(t, err)
			}

			got := metricstest.Scrape(t, srv.URL())
			for _, p := range []orchestrator.Phase{orchestrator.PhaseRunning, orchestrator.PhasePaused, orchestrator.PhaseSucceeded, orchestrator.PhaseRolledBack} {
				want := 0.0
				if p == tt.wantPhase {
					want = 1
				}
				assert.Equal(t, want, got[phaseKey(p)], "phase %s", p)
			}
			if tt.wantPhase != "" {
				assert.Equal(t, 1.0, got[phaseKey(tt.wantPhase)])
			}
			for o, want := range tt.wantSites {
				assert.Equal(t, want, got[sitesKey(o)], "sites %s", o)
			}
			assert.Equal(t, tt.wantWave, got["pbxfleet_rollout_wave"])
			assert.Equal(t, tt.wantErrs, got["pbxfleet_control_plane_refresh_errors_total"])
			assert.NotContains(t, got, "pbxfleet_results_received_total", "only WithResults exports it")
		})
	}
}

// TestControlPlaneAfterRealRollout drives a real rollout (engine, embedded NATS,
// lab hosts with real agents) and reads the endpoint over HTTP.
func TestControlPlaneAfterRealRollout(t *testing.T) {
	srv := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sites := labfleet.Sites("metrics", 120, 2) // an address range no other test uses
	fleet, err := labfleet.Start(ctx, sites, labfleet.Options{
		Dir: t.TempDir(), NATSURL: srv.URL,
		Deadlines:    node.Deadlines{Verify: 8 * time.Second, Probe: 6 * time.Second},
		PollInterval: 50 * time.Millisecond, StatusInterval: time.Second, QualifyTimeout: time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, fleet.Close()) })

	secrets := map[string]string{}
	for _, s := range sites {
		secrets[s.ID] = labfleet.NewSecret()
	}
	spec, err := planner.Parse(labfleet.FleetYAML(sites, secrets), t.TempDir(), planner.Options{})
	require.NoError(t, err)
	pp, err := planner.BuildPlan(spec, nil)
	require.NoError(t, err)
	plan := pp.RolloutPlan()

	eng := orchestrator.New(srv.JS, srv.Conn, orchestrator.WithLogger(slog.New(slog.DiscardHandler)))
	reg := metrics.NewRegistry()
	cp, err := orchestrator.NewMetrics(reg, eng, orchestrator.MetricsResults(srv.JS), orchestrator.MetricsRefresh(50*time.Millisecond))
	require.NoError(t, err)
	msrv, err := metrics.Listen("127.0.0.1:0", reg, nil)
	require.NoError(t, err)
	metricstest.Serve(t, msrv)
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- cp.Run(runCtx) }()
	t.Cleanup(func() { stopRun(); assert.NoError(t, <-done) })

	// Before any rollout: zeros, and no error.
	require.NoError(t, cp.Refresh(ctx))
	got := metricstest.Scrape(t, msrv.URL())
	assert.Equal(t, 0.0, got[phaseKey(orchestrator.PhaseSucceeded)])
	assert.Equal(t, 0.0, got["pbxfleet_results_received_total"])

	r, err := eng.Start(ctx, plan, orchestrator.Strategy{WaveSize: 2, SiteDeadline: 45 * time.Second})
	require.NoError(t, err)
	r, err = eng.Run(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, r.Message)

	require.NoError(t, cp.Refresh(ctx))
	got = metricstest.Scrape(t, msrv.URL())
	assert.Equal(t, 1.0, got[phaseKey(orchestrator.PhaseSucceeded)])
	assert.Equal(t, 0.0, got[phaseKey(orchestrator.PhaseRunning)])
	assert.Equal(t, 2.0, got[sitesKey(orchestrator.SiteConverged)])
	assert.Equal(t, 0.0, got[sitesKey(orchestrator.SiteFailed)])
	assert.Equal(t, 0.0, got[sitesKey(orchestrator.SiteUnreachable)])
	assert.Equal(t, float64(r.Wave), got["pbxfleet_rollout_wave"])
	assert.Equal(t, 8.0, got["pbxfleet_results_received_total"], "two per node: awaiting_probe, then the probe's result")
	assert.Equal(t, 0.0, got["pbxfleet_control_plane_refresh_errors_total"])
}
