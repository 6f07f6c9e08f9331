package orchestrator_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// serve runs the orchestrator service (and its keeper) until the test ends.
func serve(t *testing.T, e *orchestrator.Engine) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func putDesired(t *testing.T, srv *natstest.Server, d events.Desired) {
	t.Helper()
	kv, err := srv.JS.KeyValue(context.Background(), events.BucketDesired)
	require.NoError(t, err)
	data, _, err := events.Encode(events.SourceOrchestrator, d)
	require.NoError(t, err)
	_, err = kv.Put(context.Background(), d.Node, data)
	require.NoError(t, err)
}

func putStatus(t *testing.T, srv *natstest.Server, st events.Status) {
	t.Helper()
	kv, err := srv.JS.KeyValue(context.Background(), events.BucketStatus)
	require.NoError(t, err)
	site, role, _ := events.ParseNodeID(st.Node)
	data, _, err := events.Encode(events.NodeSource(site, role), st)
	require.NoError(t, err)
	_, err = kv.Put(context.Background(), st.Node, data)
	require.NoError(t, err)
}

// TestKeeperOrdersLateProbes: desired states with probe on_order put outside
// any rollout (by hand, or after the rollout that put them ended) are probed
// once both nodes of the site await: the keeper orders it.
func TestKeeperOrdersLateProbes(t *testing.T) {
	srv := natstest.Start(t)
	f := startFleet(t, srv, all(awaitOrder))
	serve(t, newEngine(t, srv))
	for _, role := range []string{events.RolePBX, events.RoleOML} {
		putDesired(t, srv, events.Desired{Node: events.NodeID("s1", role), Revision: 4, Trunk: trunk("s1", 5060), Probe: events.ProbeOnOrder})
	}
	f.waitFor("both nodes ordered", func(f *fleet) bool { return len(f.orders) >= 2 })
	for _, n := range nodes("s1") {
		orders := f.ordersFor(n)
		require.Len(t, orders, 1, n)
		assert.Equal(t, events.ProbeOrder{Revision: 4, Action: events.ProbeActionProbe}, orders[0])
	}
}

// TestKeeperRepairsWhatTheFarSideKeptFromConverging: a node that handled its
// key's revision and failed it for a reason other than its credentials (no
// probe verdict: the far side was down) is repaired once both nodes report and
// see each other; a node whose probe was refused (wrong credentials) is not.
func TestKeeperRepairsWhatTheFarSideKeptFromConverging(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	startFleet(t, srv, all(awaitOrder))
	e := orchestrator.New(srv.JS, srv.Conn, orchestrator.WithLogger(quiet()), orchestrator.WithRetryDelay(50*time.Millisecond),
		orchestrator.WithRepairInterval(100*time.Millisecond))
	now := time.Now().UTC()
	ok := events.TrunkState{State: "OK", Reachable: true}
	for _, s := range []struct {
		site, probe string
	}{{"down-1", ""}, {"creds-1", "auth_or_far_trunk"}} {
		for _, role := range []string{events.RolePBX, events.RoleOML} {
			node := events.NodeID(s.site, role)
			putDesired(t, srv, events.Desired{Node: node, Revision: 5, Rollout: "old", Trunk: trunk(s.site, 5060), Probe: events.ProbeOnOrder})
			st := events.Status{Node: node, AppliedRevision: 3, HandledRevision: 5, Outcome: events.OutcomeRolledBack,
				LastProbe: s.probe, Trunk: ok, Version: "test", At: now}
			putStatus(t, srv, st)
		}
	}
	serve(t, e)

	var repair orchestrator.Rollout
	require.Eventually(t, func() bool {
		r, err := e.Current(ctx)
		if err != nil || r.Origin != orchestrator.OriginRepair || !r.Phase.Terminal() {
			return false
		}
		repair = r
		return true
	}, 30*time.Second, 50*time.Millisecond, "a repair rollout ran")
	require.Equal(t, orchestrator.PhaseSucceeded, repair.Phase, dump(repair))
	assert.Equal(t, map[string]orchestrator.SiteOutcome{"down-1": orchestrator.SiteConverged}, siteOutcomes(repair),
		"only the site whose failure was not its credentials")
	for _, n := range nodes("down-1") {
		hist := keyHistory(t, srv, n)
		last := hist[len(hist)-1]
		assert.Equal(t, uint64(6), last.Revision, n)
		assert.Equal(t, repair.ID, last.Rollout)
	}
	for _, n := range nodes("creds-1") {
		hist := keyHistory(t, srv, n)
		assert.Equal(t, uint64(5), hist[len(hist)-1].Revision, "%s is left alone", n)
	}
}

// TestRevisionsStayAboveWhatNodesHandled: after the store was lost (no key, a
// node that handled revision 1006), or with a key holding garbage or a
// revision above the highest, a rollout still converges: it numbers above
// what the node's status says it handled, numbers once more when a node
// refuses a revision as stale, and overwrites a value it cannot read.
func TestRevisionsStayAboveWhatNodesHandled(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	f := startFleet(t, srv, all(awaitOrder))
	f.mu.Lock()
	f.staleReject = true
	f.last["lost-1.pbx"], f.last["lost-1.oml"] = 1006, 1006 // the nodes remember; the store does not
	f.last["st-1.pbx"], f.last["st-1.oml"] = 50, 50
	f.mu.Unlock()
	now := time.Now().UTC()
	for _, node := range nodes("st-1") {
		putStatus(t, srv, events.Status{Node: node, AppliedRevision: 49, HandledRevision: 50, Outcome: events.OutcomeConverged,
			Trunk: events.TrunkState{State: "OK", Reachable: true}, Version: "test", At: now})
	}
	kv, err := srv.JS.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	_, err = kv.Put(ctx, "bad-1.pbx", []byte("not a cloudevent"))
	require.NoError(t, err)
	_, err = kv.Put(ctx, "bad-1.oml", []byte(`{"specversion":"1.0","id":"x","source":"pbxfleet/orchestrator","type":"pbxfleet.desired.v1","datacontenttype":"application/json","subject":"bad-1.oml","data":{"node":"bad-1.oml","revision":18446744073709551615,"trunk":{}}}`))
	require.NoError(t, err)

	e := newEngine(t, srv)
	r, err := e.Start(ctx, plan(5060, "lost-1", "st-1", "bad-1"), orchestrator.Strategy{SiteDeadline: 30 * time.Second})
	require.NoError(t, err)
	out := <-runAsync(ctx, e, r.ID)
	require.NoError(t, out.err)
	require.Equal(t, orchestrator.PhaseSucceeded, out.r.Phase, dump(out.r))
	want := map[string]uint64{"lost-1": 1007, "st-1": 51, "bad-1": 1}
	for site, rev := range want {
		for _, n := range nodes(site) {
			e, err := kv.Get(ctx, n)
			require.NoError(t, err)
			d, err := events.DecodeDesired(e.Value(), nil, n)
			require.NoError(t, err, n)
			assert.Equal(t, rev, d.Revision, n)
		}
	}
	lost := nodeState(out.r, "lost-1", events.RolePBX)
	assert.Equal(t, uint64(1), lost.ReplacedRevision, "numbered 1 first, then again above 1006")
	bad := nodeState(out.r, "bad-1", events.RoleOML)
	assert.True(t, bad.PrevUnreadable)
}
