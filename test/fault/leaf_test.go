package fault

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/bus"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/proctest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// TestLeafCutDuringWave: a site's agents reach the hub's JetStream through a
// leaf node (deploy/nats/leaf.conf: no JetStream of its own, default_js_domain
// {"$G": "hub"}); the leaf is shut down before the site's wave starts and stays
// down through it, so the site is counted unreachable and the rollout completes
// within its budget; when the leaf comes back on the same port the agents
// reconnect, find their key and converge to the rollout's revision.
func TestLeafCutDuringWave(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	leafListen := proctest.FreePort(t)
	hub, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{
		DataDir: t.TempDir(), Host: "127.0.0.1", Port: -1, ServerName: "fault-hub",
		Options: func(o *server.Options) {
			o.JetStreamDomain = "hub"
			o.LeafNode.Host = "127.0.0.1"
			o.LeafNode.Port = leafListen
		},
	})
	require.NoError(t, err)
	t.Cleanup(hub.Shutdown)

	leafPort := proctest.FreePort(t)
	leafDir := t.TempDir()
	hubLink, err := url.Parse(fmt.Sprintf("nats-leaf://127.0.0.1:%d", leafListen))
	require.NoError(t, err)
	startLeaf := func() *bus.Embedded {
		t.Helper()
		leaf, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{
			DataDir: leafDir, Host: "127.0.0.1", Port: leafPort, ServerName: "fault-leaf",
			Options: func(o *server.Options) {
				o.JetStream = false
				o.JsAccDefaultDomain = map[string]string{"$G": "hub"}
				o.LeafNode.ReconnectInterval = 250 * time.Millisecond
				o.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: []*url.URL{hubLink}}}
			},
		})
		require.NoError(t, err)
		t.Cleanup(leaf.Shutdown)
		proctest.Eventually(t, 20*time.Second, "leaf link up", func() (bool, string) {
			return hub.Server().NumLeafNodes() == 1, fmt.Sprint(hub.Server().NumLeafNodes(), " leaf nodes")
		})
		return leaf
	}
	leaf := startLeaf()
	leafURL := leaf.ClientURL()

	nc, js := proctest.DialNATS(t, "fault test", hub.ClientURL())
	require.NoError(t, bus.Provision(ctx, js, bus.ProvisionConfig{}))
	hubSites := labfleet.Sites("hub", addrLeafHub, 2)
	leafSites := labfleet.Sites("leaf", addrLeafSite, 1)
	leafSite := leafSites[0].ID
	plan := fleetPlan(t, append(append([]labfleet.Site{}, hubSites...), leafSites...))
	startLabFleet(t, hubSites, hub.ClientURL())
	leafFleet := startLabFleet(t, leafSites, leafURL)
	leafNodes := []string{events.NodeID(leafSite, events.RolePBX), events.NodeID(leafSite, events.RoleOML)}
	for _, id := range leafNodes {
		proctest.Eventually(t, 20*time.Second, id+" reports status through the leaf", func() (bool, string) {
			_, err := status(ctx, js, id)
			return err == nil, fmt.Sprint(err)
		})
	}
	t.Logf("checked: %v reach the hub's JetStream through the leaf (their status is in %s)", leafNodes, events.BucketStatus)

	strategy := orchestrator.Strategy{
		Canary: 1, WaveSize: 2, Bake: 3 * time.Second, SiteDeadline: 8 * time.Second, MaxUnreachable: 1,
		WaveMaxFailed: orchestrator.NoLimit, WaveMaxUnreachable: orchestrator.NoLimit,
	}
	eng := orchestrator.New(js, nc, orchestrator.WithLogger(slog.New(slog.DiscardHandler)))
	started, err := eng.Start(ctx, plan.RolloutPlan(), strategy)
	require.NoError(t, err)
	finished := drive(ctx, t, eng, started.ID)

	baking := awaitRecord(ctx, t, js, started.ID, "the canary converged, baking", func(r orchestrator.Rollout) bool {
		return r.Wave == 1 && r.BakeUntil != nil && r.Counters.Converged == 1
	})
	leaf.Shutdown()
	cutAt := time.Now().UTC()
	t.Logf("injected: leaf server shut down (link to the hub cut) during the bake before wave 2 = [%s %s]; strategy: site deadline %s, max unreachable %d",
		hubSites[1].ID, leafSite, strategy.SiteDeadline, strategy.MaxUnreachable)
	require.True(t, baking.BakeUntil.After(cutAt), "the cut happened before the leaf site's wave started")

	r := finished()
	require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, "%s: %s", r, r.Message)
	require.Equal(t, 1, r.Counters.Unreachable, r.String())
	require.Equal(t, 2, r.Counters.Converged, r.String())
	ls, ok := r.Site(leafSite)
	require.True(t, ok)
	require.Equal(t, orchestrator.SiteUnreachable, ls.Outcome)
	require.NotNil(t, ls.StartedAt)
	require.False(t, ls.StartedAt.Before(cutAt.Truncate(time.Millisecond)), "the site started after the cut")
	revs := map[string]uint64{}
	for _, ns := range ls.Nodes {
		revs[events.NodeID(leafSite, ns.Role)] = ns.Revision
	}
	all := allResults(ctx, t, js)
	for _, id := range leafNodes {
		require.Empty(t, resultsFor(all, id, revs[id]), "%s reported nothing while cut off", id)
		require.Zero(t, leafFleet.Agent(id).AppliedRevision(), "%s applied nothing while cut off", id)
	}
	t.Logf("checked: rollout %s %s with %s %s (%s: %s); hub sites converged; the leaf site's agents applied and reported nothing",
		r.ID, r.Phase, leafSite, ls.Outcome, ls.Reason, ls.Message)

	// The control plane keeps running: its keeper orders the probes of the
	// revisions the leaf's nodes apply once they can read their keys again.
	startOrchestratorService(t, js, nc)
	startLeaf()
	t.Logf("injected: leaf server started again on the same port (%s)", leafURL)
	for _, id := range leafNodes {
		rev := revs[id]
		proctest.Eventually(t, 40*time.Second, fmt.Sprintf("%s converges to revision %d", id, rev), func() (bool, string) {
			got := resultsFor(allResults(ctx, t, js), id, rev)
			st, err := status(ctx, js, id)
			if err != nil || len(got) == 0 {
				return false, fmt.Sprintf("%d results, status err %v", len(got), err)
			}
			return st.AppliedRevision == rev && st.Healthy, fmt.Sprintf("status %+v", st)
		})
		got := resultsFor(allResults(ctx, t, js), id, rev)
		require.Len(t, got, 1, id)
		require.Equal(t, events.OutcomeConverged, got[0].res.Outcome, got[0].res.Reason)
		kv, err := js.KeyValue(ctx, events.BucketDesired)
		require.NoError(t, err)
		e, err := kv.Get(ctx, id)
		require.NoError(t, err)
		d, err := events.DecodeDesired(e.Value(), nil, id)
		require.NoError(t, err)
		require.Equal(t, rev, d.Revision, "%s: the rollout's revision is the final one on the key", id)
	}
	t.Logf("checked: after the link returned %v each published 1 converged result for their final revision %v and their status shows it applied and healthy",
		leafNodes, revs)
}
