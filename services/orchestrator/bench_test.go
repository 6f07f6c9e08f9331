package orchestrator_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// BenchmarkRollout1000Sites drives rollouts of 1000 sites (2000 nodes) against
// instant simulated nodes on a real embedded NATS server: canary of 10, then
// waves of 25%, every site in a wave in flight at once. It reports sites/s and
// the stored size of the final record: its header and one site's key.
func BenchmarkRollout1000Sites(b *testing.B) {
	const n = 1000
	srv := natstest.Start(b)
	startFleet(b, srv, all(converge))
	e := newEngine(b, srv)
	ctx := testCtx(b)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("site-%04d", i)
	}
	strategy := orchestrator.Strategy{Canary: 10, WavePercent: 25, SiteDeadline: time.Minute}
	var headerBytes, siteBytes int
	kv, err := srv.JS.KeyValue(ctx, events.BucketRollouts)
	require.NoError(b, err)
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		r, err := e.Start(ctx, plan(6000+i, names...), strategy) // a new intent each time: every site changes
		require.NoError(b, err)
		r, err = e.Run(ctx, r.ID)
		require.NoError(b, err)
		require.Equal(b, orchestrator.PhaseSucceeded, r.Phase, r.Message)
		require.Equal(b, n, r.Counters.Converged)
		h, err := kv.Get(ctx, orchestrator.StateKey(r.ID))
		require.NoError(b, err)
		site, err := kv.Get(ctx, orchestrator.SiteKey(r.ID, names[n/2]))
		require.NoError(b, err)
		headerBytes, siteBytes = len(h.Value()), len(site.Value())
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "sites/s")
	b.ReportMetric(float64(headerBytes), "header_bytes")
	b.ReportMetric(float64(siteBytes), "site_key_bytes")
}
