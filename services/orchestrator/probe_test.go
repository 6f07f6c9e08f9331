package orchestrator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// waitRecord polls the rollout's record until cond holds (a bound, not a
// speed assertion).
func waitRecord(t *testing.T, e *orchestrator.Engine, id, what string, cond func(orchestrator.Rollout) bool) orchestrator.Rollout {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := e.Get(context.Background(), id)
		require.NoError(t, err)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen: %s", what, dump(r))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func nodeState(r orchestrator.Rollout, site, role string) orchestrator.NodeState {
	s, _ := r.Site(site)
	for _, n := range s.Nodes {
		if n.Role == role {
			return n
		}
	}
	return orchestrator.NodeState{}
}

// TestProbeOrderedOnlyWhenBothSidesApplied: a node that applied and awaits its
// probe gets no order while its far side has not applied; when it has, both
// are ordered once and the site converges.
func TestProbeOrderedOnlyWhenBothSidesApplied(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	f := startFleet(t, srv, func(node string, _ uint64) behaviour {
		if node == "s1.oml" {
			return awaitHeld
		}
		return awaitOrder
	})
	e := newEngine(t, srv)
	r, err := e.Start(ctx, plan(5060, "s1"), orchestrator.Strategy{SiteDeadline: 30 * time.Second})
	require.NoError(t, err)
	done := runAsync(ctx, e, r.ID)

	// The pass that recorded s1.pbx awaiting is the pass that would have ordered.
	at := waitRecord(t, e, r.ID, "s1.pbx awaiting its probe in the record", func(r orchestrator.Rollout) bool {
		return nodeState(r, "s1", events.RolePBX).Probe != nil
	})
	pbx := nodeState(at, "s1", events.RolePBX)
	assert.Nil(t, pbx.Probe.OrderedAt, "no order while the far side has not applied")
	assert.Empty(t, f.ordersFor("s1.pbx"))

	f.releaseAwaiting(ctx)
	out := <-done
	require.NoError(t, out.err)
	require.Equal(t, orchestrator.PhaseSucceeded, out.r.Phase, dump(out.r))
	for _, node := range []string{"s1.pbx", "s1.oml"} {
		orders := f.ordersFor(node)
		require.Len(t, orders, 1, node)
		assert.Equal(t, events.ProbeActionProbe, orders[0].Action)
		assert.Equal(t, uint64(1), orders[0].Revision)
		assert.Equal(t, r.ID, orders[0].Rollout)
	}
	for _, role := range []string{events.RolePBX, events.RoleOML} {
		n := nodeState(out.r, "s1", role)
		require.NotNil(t, n.Probe, role)
		require.NotNil(t, n.Probe.OrderedAt, role)
		assert.Equal(t, events.OutcomeConverged, n.Result.Outcome)
	}
}

// TestProbeCancelledWhenTheFarSideFails: when one side rolls back before its
// probe, the side awaiting its probe is told to cancel (and rolls back at once)
// instead of waiting out its deadline; nobody places a call.
func TestProbeCancelledWhenTheFarSideFails(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	f := startFleet(t, srv, func(node string, _ uint64) behaviour {
		if node == "s1.oml" {
			return rollBack
		}
		return awaitOrder
	})
	e := newEngine(t, srv)
	r, err := e.Start(ctx, plan(5060, "s1"), orchestrator.Strategy{SiteDeadline: 30 * time.Second, MaxFailed: 1})
	require.NoError(t, err)
	out := <-runAsync(ctx, e, r.ID)
	require.NoError(t, out.err)
	require.Equal(t, orchestrator.SiteFailed, siteOutcomes(out.r)["s1"], dump(out.r))
	orders := f.ordersFor("s1.pbx")
	require.NotEmpty(t, orders)
	assert.Equal(t, events.ProbeActionCancel, orders[0].Action)
	assert.Contains(t, orders[0].Reason, "s1.oml")
	assert.Empty(t, f.ordersFor("s1.oml"), "the failed side awaits nothing")
	pbx := nodeState(out.r, "s1", events.RolePBX)
	require.NotNil(t, pbx.Result)
	assert.Equal(t, events.OutcomeRolledBack, pbx.Result.Outcome)
	assert.True(t, strings.Contains(pbx.Result.Reason, "cancel"), pbx.Result.Reason)
}

// TestProbeFailureFailsTheSite: both sides applied, the probe call failed on
// one: the site fails with that node's reason.
func TestProbeFailureFailsTheSite(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	f := startFleet(t, srv, func(node string, _ uint64) behaviour {
		if node == "s1.pbx" {
			return awaitProbeFails
		}
		return awaitOrder
	})
	e := newEngine(t, srv)
	r, err := e.Start(ctx, plan(5060, "s1"), orchestrator.Strategy{SiteDeadline: 30 * time.Second, MaxFailed: 1})
	require.NoError(t, err)
	out := <-runAsync(ctx, e, r.ID)
	require.NoError(t, out.err)
	s, _ := out.r.Site("s1")
	require.Equal(t, orchestrator.SiteFailed, s.Outcome, dump(out.r))
	assert.Contains(t, s.Message, "CONGESTION:21")
	assert.Len(t, f.ordersFor("s1.pbx"), 1, "one order, one call")
}

// TestFailedSiteIsPutBackAndProven: a site that failed gets its previous intent
// back as a new revision on both nodes, whose probe the orchestrator orders once
// both run it: the keys end saying what the site runs, proven by a call.
func TestFailedSiteIsPutBackAndProven(t *testing.T) {
	for _, tt := range []struct {
		name          string
		onSiteFailure string
		wantRestored  int
	}{
		{"restore (the default)", "", 2},
		{"keep", orchestrator.OnSiteFailureKeep, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Start(t)
			ctx := testCtx(t)
			seed(t, srv, 1, 5060, "s1", "s2")
			f := startFleet(t, srv, func(node string, rev uint64) behaviour {
				if node == "s1.oml" && rev == 2 {
					return rollBack
				}
				return awaitOrder
			})
			e := newEngine(t, srv)
			r, err := e.Start(ctx, plan(5070, "s1", "s2"), orchestrator.Strategy{
				SiteDeadline: 30 * time.Second, MaxFailed: 1, WaveMaxFailed: orchestrator.NoLimit, OnSiteFailure: tt.onSiteFailure})
			require.NoError(t, err)
			out := <-runAsync(ctx, e, r.ID)
			require.NoError(t, out.err)
			require.Equal(t, orchestrator.PhaseSucceeded, out.r.Phase, dump(out.r))
			assert.Equal(t, map[string]orchestrator.SiteOutcome{"s1": orchestrator.SiteFailed, "s2": orchestrator.SiteConverged}, siteOutcomes(out.r))
			assert.Equal(t, tt.wantRestored, out.r.Counters.Restored, dump(out.r))
			for _, n := range nodes("s1") {
				hist := keyHistory(t, srv, n)
				last := hist[len(hist)-1]
				if tt.wantRestored == 0 {
					assert.Equal(t, uint64(2), last.Revision, n)
					continue
				}
				assert.Equal(t, uint64(3), last.Revision, n)
				assert.Equal(t, 5060, last.Trunk.PBXPort, "%s: the previous intent is back", n)
				assert.Equal(t, events.ProbeOnOrder, last.Probe)
				orders := f.ordersFor(n)
				require.NotEmpty(t, orders, n)
				lastOrder := orders[len(orders)-1]
				assert.Equal(t, uint64(3), lastOrder.Revision, "%s: the restore is proven by a probe", n)
				assert.Equal(t, events.ProbeActionProbe, lastOrder.Action)
			}
		})
	}
}

// TestUnputtableSiteFailsInsteadOfRetrying: a desired state that can never be
// put (an event over the size limit) fails its site at once, with the reason;
// no retry loop outlives the site.
func TestUnputtableSiteFailsInsteadOfRetrying(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	startFleet(t, srv, all(awaitOrder))
	p := plan(5060, "s1", "s2")
	big := trunk("s1", 5060)
	for i := range 2000 {
		big.DIDs = append(big.DIDs, events.DID{Number: fmt.Sprintf("0980%05d", i), Extension: fmt.Sprintf("5%04d", i)})
	}
	p.Targets[0].Nodes[events.RolePBX] = big
	e := newEngine(t, srv)
	r, err := e.Start(ctx, p, orchestrator.Strategy{SiteDeadline: time.Hour, MaxFailed: 1, WaveMaxFailed: orchestrator.NoLimit})
	require.NoError(t, err)
	out := <-runAsync(ctx, e, r.ID)
	require.NoError(t, out.err)
	s1, _ := out.r.Site("s1")
	assert.Equal(t, orchestrator.SiteFailed, s1.Outcome, dump(out.r))
	assert.Equal(t, orchestrator.ReasonPutFailed, s1.Reason)
	assert.Contains(t, s1.Message, "too large")
	assert.Equal(t, orchestrator.SiteConverged, siteOutcomes(out.r)["s2"])
}

func TestFitAnswer(t *testing.T) {
	r := orchestrator.Rollout{ID: "r"}
	for i := range 400 {
		o := orchestrator.SiteConverged
		if i%100 == 7 {
			o = orchestrator.SiteFailed
		}
		r.Sites = append(r.Sites, orchestrator.SiteState{Site: fmt.Sprintf("s%03d", i), Index: i, Outcome: o})
	}
	whole, err := json.Marshal(r)
	require.NoError(t, err)
	assert.Equal(t, r, orchestrator.FitAnswer(r, len(whole)), "it fits: nothing left out")
	got := orchestrator.FitAnswer(r, len(whole)/4)
	b, err := json.Marshal(got)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(b), len(whole)/4)
	assert.Equal(t, 400, len(got.Sites)+got.SitesOmitted)
	failed := 0
	for i, s := range got.Sites {
		if s.Outcome == orchestrator.SiteFailed {
			failed++
		}
		if i > 0 {
			assert.Less(t, got.Sites[i-1].Index, s.Index, "plan order")
		}
	}
	assert.Equal(t, 4, failed, "the failed sites are kept first")
}
