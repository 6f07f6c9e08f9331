package fault

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/proctest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// TestLostControlPlaneStore: the control plane's store is lost (pbxfleet serve
// SIGKILLed and its --data directory gone) while the fleet's nodes remember the
// revisions they handled. The recovery the README documents: start serve on an
// empty data directory and roll the same fleet file out again. The new store
// numbers from 1, or from what the nodes' statuses say once they report again;
// a node that refuses a revision as stale names what it handled and is numbered
// again above it. Every site converges with no hand edit of any agent's state.
// A desired key deleted by hand is handled the same way.
func TestLostControlPlaneStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	dataDir := t.TempDir()
	listen := "127.0.0.1:" + strconv.Itoa(proctest.FreePort(t))
	url := "nats://" + listen
	args := []string{"serve", "--data", dataDir, "--listen", listen, "--log-format", "text"}
	first := proctest.Start(t, "serve-1", bins.PBXFleet, args...)
	nc, js := proctest.DialNATS(t, "fault test", url)

	sites := labfleet.Sites("lost", addrLostStore, 3)
	plan := fleetPlan(t, sites).RolloutPlan()
	startLabFleet(t, sites, url)
	st := orchestrator.Strategy{SiteDeadline: 40 * time.Second, WaveMaxFailed: orchestrator.NoLimit, WaveMaxUnreachable: orchestrator.NoLimit}
	// Three rollouts, so that every node has handled revision 3: the first
	// puts the plan, the next two re-put it over a bumped qualify frequency.
	for i, qf := range []int{60, 61, 60} {
		p := withQualifyFrequency(plan, qf)
		id := startRollout(ctx, t, nc, p, st)
		r := awaitTerminal(t, js, id, 40*time.Second)
		require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, "rollout %d: %s", i+1, r.Message)
	}
	nodes := siteNodes(sites)
	for _, n := range nodes {
		proctest.Eventually(t, 10*time.Second, n+" at revision 3", func() (bool, string) {
			s, err := status(ctx, js, n)
			return err == nil && s.AppliedRevision == 3, "status: " + errText(err)
		})
	}
	t.Logf("checked: 3 rollouts converged; every node runs revision 3")

	first.Kill(t)
	sig, ok := first.KilledBy()
	require.True(t, ok && sig == syscall.SIGKILL, "serve ended by %v", first.Err())
	require.NoError(t, os.RemoveAll(dataDir))
	require.NoError(t, os.MkdirAll(dataDir, 0o755))
	second := proctest.Start(t, "serve-2", bins.PBXFleet, args...)
	t.Logf("injected: SIGKILL to pbxfleet serve (pid %d), its data directory deleted; serve started again (pid %d) on an empty one", first.PID(), second.PID())

	// Right away, before the nodes report again: the new store knows nothing.
	id := startRollout(ctx, t, nc, plan, st)
	r := awaitTerminal(t, js, id, 60*time.Second)
	require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, "%s: %s", r, r.Message)
	renumbered := 0
	for _, s := range r.Sites {
		for _, n := range s.Nodes {
			require.NotNil(t, n.Result, s.Site)
			require.Equal(t, events.OutcomeConverged, n.Result.Outcome, "%s %s: %s", s.Site, n.Role, n.Result.Reason)
			require.Greater(t, n.Revision, uint64(3), "%s %s is numbered above what it handled", s.Site, n.Role)
			if n.ReplacedRevision != 0 {
				renumbered++
			}
		}
	}
	t.Logf("checked: rollout %s on the new store converged every site (%d nodes numbered again after refusing a revision as stale, the rest numbered above their status)", id, renumbered)

	// A desired key deleted by anyone: the next rollout numbers above the node.
	kv, err := js.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	victim := nodes[0]
	require.NoError(t, kv.Delete(ctx, victim))
	before, err := status(ctx, js, victim)
	require.NoError(t, err)
	id = startRollout(ctx, t, nc, withQualifyFrequency(plan, 62), st)
	r = awaitTerminal(t, js, id, 40*time.Second)
	require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, "%s: %s", r, r.Message)
	site, role, _ := events.ParseNodeID(victim)
	s, _ := r.Site(site)
	for _, n := range s.Nodes {
		if n.Role == role {
			require.Greater(t, n.Revision, before.HandledRevision)
			require.Equal(t, events.OutcomeConverged, n.Result.Outcome)
		}
	}
	t.Logf("checked: %s's desired key deleted by hand; the next rollout numbered it %d (it had handled %d) and it converged", victim, s.Nodes[0].Revision, before.HandledRevision)
}

// withQualifyFrequency returns a copy of p whose every intent has qualify
// frequency qf: a change that re-applies every node.
func withQualifyFrequency(p orchestrator.Plan, qf int) orchestrator.Plan {
	out := orchestrator.Plan{Hash: p.Hash + "-qf" + strconv.Itoa(qf)}
	for _, t := range p.Targets {
		nt := orchestrator.Target{Site: t.Site, Nodes: map[string]events.Trunk{}}
		for role, tr := range t.Nodes {
			tr.QualifyFrequency = qf
			nt.Nodes[role] = tr
		}
		out.Targets = append(out.Targets, nt)
	}
	return out
}

func siteNodes(sites []labfleet.Site) []string {
	var out []string
	for _, s := range sites {
		out = append(out, events.NodeID(s.ID, events.RolePBX), events.NodeID(s.ID, events.RoleOML))
	}
	return out
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
