package realasterisk

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
)

// BenchmarkPutToResultRealAsterisk rolls one site out 20 times on real
// Asterisk (the secret alternating) and reports, per node, the time from its
// desired put (the KV entry's server time) to its final result (the result's
// time): p50 and p99 over the 40 node rollouts, and the site's (the later
// node) p50 and p99. Run with -benchtime 1x.
func BenchmarkPutToResultRealAsterisk(b *testing.B) {
	labScript(b)
	const rollouts = 20
	r := newRig(b, fleetSite{Scenario: "lan", PBXIP: "127.0.136.2", OMLIP: "127.0.136.3", Secret: strongSecret(9)}, 15*time.Second)
	ctx := context.Background()
	kv, err := r.js.KeyValue(ctx, events.BucketDesired)
	require.NoError(b, err)
	var nodes, sites []time.Duration
	for b.Loop() {
		nodes, sites = nodes[:0], sites[:0]
		for i := range rollouts {
			r.site.Secret = strongSecret(10 + i%2)
			rec, code, _ := r.rollout()
			requireConverged(b, rec, code)
			var site time.Duration
			for _, n := range siteOf(b, rec).Nodes {
				e, err := kv.Get(ctx, siteID+"."+n.Role)
				require.NoError(b, err)
				d := n.Result.At.Sub(e.Created())
				nodes = append(nodes, d)
				site = max(site, d)
			}
			sites = append(sites, site)
		}
	}
	slices.Sort(nodes)
	slices.Sort(sites)
	pct := func(ds []time.Duration, p float64) float64 {
		return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(nodes, 0.5), "node-p50-ms")
	b.ReportMetric(pct(nodes, 0.99), "node-p99-ms")
	b.ReportMetric(pct(sites, 0.5), "site-p50-ms")
	b.ReportMetric(pct(sites, 0.99), "site-p99-ms")
	b.Logf("%d rollouts on real Asterisk: put -> final result per node p50 %.0f ms p99 %.0f ms; per site p50 %.0f ms p99 %.0f ms",
		rollouts, pct(nodes, 0.5), pct(nodes, 0.99), pct(sites, 0.5), pct(sites, 0.99))
}
