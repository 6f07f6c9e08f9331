package labfleet_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/bus/bustest"
	"github.com/pbxfleet/pbxfleet/internal/lab"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/services/planner"
)

// TestAuthorizedAgentsConverge runs the real node agents of one lab site (both
// sides, lab hosts in instant mode) with their own credentials and inbox
// prefixes: the orchestrator user puts the desired states, both agents apply,
// verify (qualify and the probe call between the two lab hosts), publish their
// results and put their status, all without one permission violation; the
// operator then reaches their services.
func TestAuthorizedAgentsConverge(t *testing.T) {
	sites := labfleet.Sites("authz", 230, 1)
	site := sites[0]
	ids := []string{events.NodeID(site.ID, events.RolePBX), events.NodeID(site.ID, events.RoleOML)}
	s := bustest.StartAuthServer(t, ids...)
	spec, err := planner.Parse(labfleet.FleetYAML(sites, map[string]string{site.ID: labfleet.NewSecret()}), t.TempDir(), planner.Options{})
	require.NoError(t, err)
	plan, err := planner.BuildPlan(spec, nil)
	require.NoError(t, err)

	network := lab.NewNetwork()
	dir := t.TempDir()
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	agentViolations := map[string]*bustest.Violations{}
	for _, id := range ids {
		_, role, _ := events.ParseNodeID(id)
		addr := site.PBXAddress
		if role == events.RoleOML {
			addr = site.OMLAddress
		}
		confDir := filepath.Join(dir, id, "etc")
		require.NoError(t, lab.WriteStockFiles(confDir, lab.Role(role), addr, site.Profile))
		host, err := lab.NewHost(lab.Config{Role: lab.Role(role), Name: id, ConfigDir: confDir, Address: addr, Instant: true, Network: network})
		require.NoError(t, err)
		require.NoError(t, host.Start(context.Background()))
		t.Cleanup(func() { _ = host.Close() })

		nc, v := s.Connect(t, id)
		agentViolations[id] = v
		side, err := node.SideFor(role)
		require.NoError(t, err)
		agent, err := node.New(node.Config{
			Node: id, ConfigDir: confDir, StateDir: filepath.Join(dir, id, "state"),
			Deadlines:    node.Deadlines{Verify: 8 * time.Second, Probe: 6 * time.Second},
			PollInterval: 20 * time.Millisecond, StatusInterval: 200 * time.Millisecond,
		}, side, host, nc, node.WithVersion("v0.0.0-authz"), node.WithLogger(slog.New(slog.DiscardHandler)))
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, agent.Run(runCtx))
		}()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	orch, _ := s.Connect(t, "orchestrator")
	ojs, err := jetstream.New(orch)
	require.NoError(t, err)
	// The orchestrator's identity puts the desired states, reads the results
	// and orders the probes as a rollout does: the suite's helpers, on its
	// connection instead of the test server's.
	asOrchestrator := &natstest.Server{Conn: orch, JS: ojs}
	putAll(t, asOrchestrator, plan)
	got := results(t, asOrchestrator, len(ids))
	for _, id := range ids {
		assert.Equal(t, events.OutcomeConverged, got[id].Outcome, "%s: %s", id, got[id].Reason)
	}
	// ...and the status each agent put.
	status, err := ojs.KeyValue(ctx, events.BucketStatus)
	require.NoError(t, err)
	for _, id := range ids {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			e, err := status.Get(ctx, id)
			if !assert.NoError(c, err) {
				return
			}
			st, err := events.DecodeStatus(e.Value(), nil, id)
			if assert.NoError(c, err) {
				assert.True(c, st.Healthy, "%s: %s", id, st.Detail)
			}
		}, 10*time.Second, 50*time.Millisecond)
	}

	// The operator reaches each node's status endpoint and the service discovery.
	op, _ := s.Connect(t, "operator")
	for _, id := range ids {
		site, role, _ := events.ParseNodeID(id)
		msg, err := op.RequestWithContext(ctx, events.StatusSubject(site, role), nil)
		require.NoError(t, err, id)
		assert.Contains(t, string(msg.Data), `"applied_revision"`, id)
	}
	inbox := op.NewRespInbox()
	pings, err := op.SubscribeSync(inbox)
	require.NoError(t, err)
	require.NoError(t, op.PublishRequest("$SRV.PING."+events.ServiceNode, inbox, nil))
	for range ids {
		_, err := pings.NextMsg(5 * time.Second)
		require.NoError(t, err)
	}

	// Let each agent refresh its status twice more (each refresh reads its
	// own key again) under the permissions, then check nothing was refused.
	statusKV := status
	seen := map[string]uint64{}
	for _, id := range ids {
		e, err := statusKV.Get(ctx, id)
		require.NoError(t, err, id)
		seen[id] = e.Revision()
	}
	require.Eventually(t, func() bool {
		for _, id := range ids {
			e, err := statusKV.Get(ctx, id)
			if err != nil || e.Revision() < seen[id]+2 {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "every agent refreshed its status twice more")
	for id, v := range agentViolations {
		assert.Empty(t, v.All(), "%s was refused something it needs", id)
	}
}
