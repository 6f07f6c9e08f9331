package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// runAsync drives a rollout in a goroutine and returns its outcome channel.
type runOutcome struct {
	r   orchestrator.Rollout
	err error
}

func runAsync(ctx context.Context, e *orchestrator.Engine, id string) <-chan runOutcome {
	ch := make(chan runOutcome, 1)
	go func() {
		r, err := e.Run(ctx, id)
		ch <- runOutcome{r, err}
	}()
	return ch
}

func TestCanaryFailureStopsBeforeWave1(t *testing.T) {
	tests := []struct {
		name      string
		onFailure string
		canary    behaviour
		wantPhase orchestrator.Phase
	}{
		{"rolled back node, roll back", orchestrator.OnFailureRollback, rollBack, orchestrator.PhaseRolledBack},
		{"failed node, roll back", "", fail, orchestrator.PhaseRolledBack},
		{"rejected node, pause", orchestrator.OnFailurePause, reject, orchestrator.PhasePaused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Start(t)
			ctx := testCtx(t)
			names := sites(5)
			seed(t, srv, 1, 5060, names...)
			// Only the canary's pbx node fails the new revision; its restore converges.
			startFleet(t, srv, func(node string, rev uint64) behaviour {
				if node == "s1.pbx" && rev == 2 {
					return tt.canary
				}
				return converge
			})
			e := newEngine(t, srv)
			// MaxFailed 3 would tolerate the failure in a normal wave: the canary must converge.
			r, err := e.Start(ctx, plan(5070, names...), orchestrator.Strategy{
				Canary: 1, WaveSize: 2, MaxFailed: 3, WaveMaxFailed: orchestrator.NoLimit,
				WaveMaxUnreachable: orchestrator.NoLimit, OnFailure: tt.onFailure, SiteDeadline: 30 * time.Second,
			})
			require.NoError(t, err)
			require.Equal(t, 3, r.Waves)
			r, err = e.Run(ctx, r.ID)
			require.NoError(t, err)

			require.Equal(t, tt.wantPhase, r.Phase, dump(r))
			assert.True(t, hasReason(r, orchestrator.ReasonCanaryFailed), dump(r))
			assert.Equal(t, 1, r.Wave)
			assert.Equal(t, orchestrator.SiteFailed, siteOutcomes(r)["s1"])
			for _, node := range nodes(names[1:]...) {
				assert.Equal(t, []uint64{1}, revisions(keyHistory(t, srv, node)), "%s must never get a desired put", node)
			}
			if tt.wantPhase == orchestrator.PhaseRolledBack {
				for _, node := range nodes("s1") {
					h := keyHistory(t, srv, node)
					require.Equal(t, []uint64{1, 2, 3}, revisions(h), node)
					assert.Equal(t, 5060, h[2].Trunk.PBXPort, "restore revision carries the previous intent")
					assert.Equal(t, r.ID, h[2].Rollout)
					assert.Equal(t, "seed", h[2].PlanHash)
				}
				assert.Equal(t, 2, r.Counters.Restored)
				cur, err := e.Current(ctx)
				require.NoError(t, err)
				assert.Equal(t, r.ID, cur.ID, "the last rollout is current once the lock is free")
			}
		})
	}
}

func TestBudgetCountsFailedAndUnreachableSeparately(t *testing.T) {
	tests := []struct {
		name                      string
		down                      []string
		failing                   []string
		maxFailed, maxUnreachable int
		waveMaxUnreachable        int
		wantPhase                 orchestrator.Phase
		wantReason                string
		wantFailed, wantUnreach   int
	}{
		{name: "one silent site within the unreachable budget", down: []string{"s2"},
			maxUnreachable: 1, waveMaxUnreachable: orchestrator.NoLimit,
			wantPhase: orchestrator.PhaseSucceeded, wantReason: orchestrator.ReasonSucceeded, wantUnreach: 1},
		{name: "a second silent site spends it", down: []string{"s2", "s3"},
			maxUnreachable: 1, waveMaxUnreachable: orchestrator.NoLimit,
			wantPhase: orchestrator.PhasePaused, wantReason: orchestrator.ReasonBudgetExceeded, wantUnreach: 2},
		{name: "a failed site does not use the unreachable budget", down: []string{"s2"}, failing: []string{"s3"},
			maxFailed: 1, maxUnreachable: 1, waveMaxUnreachable: orchestrator.NoLimit,
			wantPhase: orchestrator.PhaseSucceeded, wantReason: orchestrator.ReasonSucceeded, wantFailed: 1, wantUnreach: 1},
		{name: "unreachable budget left does not cover a failure", failing: []string{"s3"},
			maxUnreachable: 5, waveMaxUnreachable: orchestrator.NoLimit,
			wantPhase: orchestrator.PhasePaused, wantReason: orchestrator.ReasonBudgetExceeded, wantFailed: 1},
		{name: "the per-wave limit trips before the overall one", down: []string{"s2"},
			maxUnreachable: 5, waveMaxUnreachable: 0,
			wantPhase: orchestrator.PhasePaused, wantReason: orchestrator.ReasonBudgetExceeded, wantUnreach: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Start(t)
			ctx := testCtx(t)
			names := sites(5)
			seed(t, srv, 1, 5060, names...)
			rules := map[string]map[uint64]behaviour{}
			for _, s := range tt.failing {
				rules[s] = map[uint64]behaviour{2: fail}
			}
			startFleet(t, srv, bySite(rules), tt.down...)
			e := newEngine(t, srv)
			r, err := e.Start(ctx, plan(5070, names...), orchestrator.Strategy{
				MaxFailed: tt.maxFailed, MaxUnreachable: tt.maxUnreachable,
				WaveMaxFailed: orchestrator.NoLimit, WaveMaxUnreachable: tt.waveMaxUnreachable,
				OnFailure: orchestrator.OnFailurePause, SiteDeadline: 400 * time.Millisecond,
			})
			require.NoError(t, err)
			r, err = e.Run(ctx, r.ID)
			require.NoError(t, err)
			require.Equal(t, tt.wantPhase, r.Phase, dump(r))
			assert.Equal(t, tt.wantReason, r.Reason)
			assert.Equal(t, tt.wantFailed, r.Counters.Failed)
			assert.Equal(t, tt.wantUnreach, r.Counters.Unreachable)
			assert.Equal(t, 5-tt.wantFailed-tt.wantUnreach, r.Counters.Converged)
			for _, s := range tt.down {
				st, _ := r.Site(s)
				assert.Equal(t, orchestrator.SiteUnreachable, st.Outcome)
				assert.Equal(t, orchestrator.ReasonDeadline, st.Reason)
			}
		})
	}
}

func TestResumeAfterDriverKilledMidWave(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	names := sites(6)
	seed(t, srv, 1, 5060, names...)
	f := startFleet(t, srv, all(hold))

	e1 := newEngine(t, srv)
	r, err := e1.Start(ctx, plan(5070, names...), orchestrator.Strategy{Parallelism: 2, SiteDeadline: 30 * time.Second})
	require.NoError(t, err)
	id := r.ID
	runCtx, kill := context.WithCancel(ctx)
	done := runAsync(runCtx, e1, id)
	f.waitFor("the first two sites put", func(f *fleet) bool {
		for _, n := range nodes("s1", "s2") {
			if !f.sawPut(n, 2) {
				return false
			}
		}
		return true
	})
	kill() // the driving process dies mid-wave
	out := <-done
	require.ErrorIs(t, out.err, context.Canceled)

	// It had also put s3 and died before recording it.
	r, err = e1.Get(ctx, id)
	require.NoError(t, err)
	s3, _ := r.Site("s3")
	require.Equal(t, orchestrator.SitePending, s3.Outcome)
	kv, err := srv.JS.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	for _, n := range s3.Nodes {
		d := events.Desired{Node: events.NodeID("s3", n.Role), Revision: n.Revision, Rollout: id, PlanHash: r.PlanHash, Trunk: trunk("s3", 5070)}
		data, _, err := events.Encode(events.SourceOrchestrator, d)
		require.NoError(t, err)
		_, err = kv.Put(ctx, d.Node, data)
		require.NoError(t, err)
	}
	f.waitFor("s3 handled", func(f *fleet) bool { return f.sawPut("s3.pbx", 2) && f.sawPut("s3.oml", 2) })
	// The nodes report while no driver runs.
	f.setBehaviour(all(converge))
	f.release(ctx)

	nc2, err := nats.Connect(srv.URL)
	require.NoError(t, err)
	defer nc2.Close()
	js2, err := jetstream.New(nc2)
	require.NoError(t, err)
	e2 := orchestrator.New(js2, nc2, orchestrator.WithLogger(quiet()))
	r, err = e2.Resume(ctx, id)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseRunning, r.Phase)
	r, err = e2.Run(ctx, id)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, dump(r))
	assert.Equal(t, 6, r.Counters.Converged)

	for _, node := range nodes(names...) {
		puts := 0
		for _, d := range keyHistory(t, srv, node) {
			if d.Rollout == id && d.Revision == 2 {
				puts++
			}
		}
		assert.Equal(t, 1, puts, "%s: exactly one put of the rollout's revision", node)
		assert.Equal(t, []uint64{2}, f.handledRevs(node), "%s applied once", node)
	}
}

func TestAbortKeepsConvergedSitesAndRestoresTheRest(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	names := sites(3)
	seed(t, srv, 1, 5060, names...)
	f := startFleet(t, srv, bySite(map[string]map[uint64]behaviour{"s2": {2: silent}}))
	e := newEngine(t, srv)
	r, err := e.Start(ctx, plan(5070, names...), orchestrator.Strategy{Canary: 1, Parallelism: 1, SiteDeadline: 30 * time.Second})
	require.NoError(t, err)
	done := runAsync(ctx, e, r.ID)
	f.waitFor("s2 put", func(f *fleet) bool { return f.sawPut("s2.pbx", 2) && f.sawPut("s2.oml", 2) })

	r, err = e.Abort(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseAborting, r.Phase)
	out := <-done
	require.NoError(t, out.err)
	r = out.r
	require.Equal(t, orchestrator.PhaseAborted, r.Phase, dump(r))
	assert.Equal(t, orchestrator.ReasonAborted, r.Reason)
	assert.Equal(t, map[string]orchestrator.SiteOutcome{
		"s1": orchestrator.SiteConverged, "s2": orchestrator.SiteCancelled, "s3": orchestrator.SitePending,
	}, siteOutcomes(r))
	for _, node := range nodes("s1") {
		h := keyHistory(t, srv, node)
		assert.Equal(t, []uint64{1, 2}, revisions(h), "converged site keeps the new intent")
	}
	for _, node := range nodes("s2") {
		h := keyHistory(t, srv, node)
		require.Equal(t, []uint64{1, 2, 3}, revisions(h), node)
		assert.Equal(t, 5060, h[2].Trunk.PBXPort, "restored to the previous intent")
		assert.Equal(t, []uint64{2, 3}, f.handledRevs(node))
	}
	for _, node := range nodes("s3") {
		assert.Equal(t, []uint64{1}, revisions(keyHistory(t, srv, node)), "never reached")
	}
	assert.Equal(t, 2, r.Counters.Restored)

	_, err = e.Abort(ctx, r.ID)
	require.NoError(t, err, "aborting an aborted rollout changes nothing")
	_, err = e.Resume(ctx, r.ID)
	require.ErrorIs(t, err, orchestrator.ErrInvalidPhase)
}

func TestRollbackRestoresEveryNodeTouched(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	seed(t, srv, 1, 5060, "s1", "s2") // s3 is new: it has no previous state
	f := startFleet(t, srv, all(converge))
	e := newEngine(t, srv)
	r, err := e.Start(ctx, plan(5070, "s1", "s2", "s3"), orchestrator.Strategy{WaveSize: 1, SiteDeadline: 30 * time.Second})
	require.NoError(t, err)
	r, err = e.Run(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, dump(r))
	require.Equal(t, 3, r.Waves)

	r, err = e.Rollback(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseRollingBack, r.Phase)
	r, err = e.Run(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseRolledBack, r.Phase, dump(r))
	assert.Equal(t, 4, r.Counters.Restored)

	for _, node := range nodes("s1", "s2") {
		h := keyHistory(t, srv, node)
		require.Equal(t, []uint64{1, 2, 3}, revisions(h), node)
		assert.Equal(t, 5060, h[2].Trunk.PBXPort)
		assert.Equal(t, []uint64{2, 3}, f.handledRevs(node))
	}
	s3, _ := r.Site("s3")
	for _, n := range s3.Nodes {
		assert.Equal(t, orchestrator.ReasonNoPrevious, n.RestoreNote)
	}
	for _, node := range nodes("s3") {
		assert.Equal(t, []uint64{1}, revisions(keyHistory(t, srv, node)))
	}
	// The lock was taken again for the rollback and is free once more.
	_, err = e.Start(ctx, plan(5080, "s1"), orchestrator.Strategy{})
	require.NoError(t, err)
}

func TestLateNodeAppliesOnlyTheNewestRevision(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	seed(t, srv, 1, 5060, "s1", "s2")
	f := startFleet(t, srv, all(converge), "s2")
	e := newEngine(t, srv)
	strategy := orchestrator.Strategy{MaxUnreachable: 1, WaveMaxUnreachable: orchestrator.NoLimit, SiteDeadline: 300 * time.Millisecond}
	for _, port := range []int{5070, 5080} { // two rollouts pass s2 by while it is down
		r, err := e.Start(ctx, plan(port, "s1", "s2"), strategy)
		require.NoError(t, err)
		r, err = e.Run(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, dump(r))
		require.Equal(t, orchestrator.SiteUnreachable, siteOutcomes(r)["s2"])
	}
	for _, node := range nodes("s2") {
		require.Equal(t, []uint64{1, 2, 3}, revisions(keyHistory(t, srv, node)))
	}
	f.up(ctx, "s2")
	for _, node := range nodes("s2") {
		assert.Equal(t, []uint64{3}, f.handledRevs(node), "%s gets what its key holds now, never a superseded revision", node)
		assert.Equal(t, []uint64{2, 3}, f.handledRevs("s1"+node[2:]))
	}
}

func TestOneActiveRolloutAtATime(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	startFleet(t, srv, all(converge))
	e := newEngine(t, srv)
	a, err := e.Start(ctx, plan(5070, "s1", "s2"), orchestrator.Strategy{})
	require.NoError(t, err)

	_, err = e.Start(ctx, plan(5080, "s3"), orchestrator.Strategy{})
	require.ErrorIs(t, err, orchestrator.ErrRolloutActive)
	require.ErrorContains(t, err, a.ID)
	cur, err := e.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, a.ID, cur.ID)

	a, err = e.Run(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseSucceeded, a.Phase)

	b, err := e.Start(ctx, plan(5080, "s3"), orchestrator.Strategy{})
	require.NoError(t, err)
	_, err = e.Rollback(ctx, a.ID)
	require.ErrorIs(t, err, orchestrator.ErrRolloutActive, "rolling back a finished rollout needs the lock")
	b, err = e.Run(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseSucceeded, b.Phase)

	// A lock left behind by a finished rollout (its driver died before
	// releasing it) is stale and taken over.
	kv, err := srv.JS.KeyValue(ctx, events.BucketRollouts)
	require.NoError(t, err)
	stale, _ := json.Marshal(map[string]any{"id": b.ID, "since": time.Now().UTC()})
	_, err = kv.Create(ctx, orchestrator.KeyCurrent, stale)
	require.NoError(t, err)
	c, err := e.Start(ctx, plan(5090, "s3"), orchestrator.Strategy{})
	require.NoError(t, err)
	cur, err = e.Current(ctx)
	require.NoError(t, err)
	require.Equal(t, c.ID, cur.ID)
}

func TestSitesAtThePlannedRevisionAreSkipped(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	names := sites(5) // s1..s3 and s5 hold the planned intent at revision 1; s4 is new
	seed(t, srv, 1, 5070, append(slices.Clone(names[:3]), names[4])...)
	status, err := srv.JS.KeyValue(ctx, events.BucketStatus)
	require.NoError(t, err)
	putStatus := func(node string, applied uint64, driftFiles ...string) {
		data, _, err := events.Encode(events.NodeSource(node[:2], node[3:]), events.Status{
			Node: node, AppliedRevision: applied, Outcome: events.OutcomeConverged, Version: "test",
			Trunk: events.TrunkState{State: "OK"}, At: time.Now().UTC(), Healthy: len(driftFiles) == 0,
			Drift: len(driftFiles) > 0, DriftFiles: driftFiles,
		})
		require.NoError(t, err)
		_, err = status.Put(ctx, node, data)
		require.NoError(t, err)
	}
	// s1: both nodes report revision 1 applied in their status.
	putStatus("s1.pbx", 1)
	putStatus("s1.oml", 1)
	// s2: pbx by status, oml only by its last result (its status expired).
	putStatus("s2.pbx", 1)
	f := startFleet(t, srv, all(converge))
	f.publish(ctx, result("s2", "oml", events.Desired{Node: "s2.oml", Revision: 1, Rollout: "seed"}, converge))
	// s3: pbx applied; oml never applied revision 1 (it was down), so it is put again.
	putStatus("s3.pbx", 1)
	// s5: both applied revision 1, but someone edited the PBX's managed file:
	// drift is repaired by putting the same intent again.
	putStatus("s5.pbx", 1, "pbxfleet_sip.conf")
	putStatus("s5.oml", 1)

	e := newEngine(t, srv)
	r, err := e.Start(ctx, plan(5070, names...), orchestrator.Strategy{})
	require.NoError(t, err)
	assert.Equal(t, 2, r.Counters.Skipped)
	assert.Equal(t, 1, r.Waves)
	s3, _ := r.Site("s3")
	assert.True(t, s3.Nodes[0].UpToDate)
	assert.Equal(t, uint64(2), s3.Nodes[1].Revision)

	r, err = e.Run(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, dump(r))
	assert.Equal(t, map[string]orchestrator.SiteOutcome{
		"s1": orchestrator.SiteSkipped, "s2": orchestrator.SiteSkipped,
		"s3": orchestrator.SiteConverged, "s4": orchestrator.SiteConverged, "s5": orchestrator.SiteConverged,
	}, siteOutcomes(r))
	for node, want := range map[string][]uint64{
		"s1.pbx": {1}, "s1.oml": {1}, "s2.pbx": {1}, "s2.oml": {1},
		"s3.pbx": {1}, "s3.oml": {1, 2}, "s4.pbx": {1}, "s4.oml": {1},
		"s5.pbx": {1, 2}, "s5.oml": {1},
	} {
		assert.Equal(t, want, revisions(keyHistory(t, srv, node)), node)
	}
	assert.Equal(t, []uint64{2}, f.handledRevs("s3.oml"))
	assert.Empty(t, f.handledRevs("s3.pbx"), "an up-to-date node is not put")
}

func TestPauseThenResume(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	names := sites(4)
	seed(t, srv, 1, 5060, names...)
	f := startFleet(t, srv, bySite(map[string]map[uint64]behaviour{"s1": {2: hold}}))
	e := newEngine(t, srv)
	r, err := e.Start(ctx, plan(5070, names...), orchestrator.Strategy{Parallelism: 1, SiteDeadline: 30 * time.Second})
	require.NoError(t, err)
	done := runAsync(ctx, e, r.ID)
	f.waitFor("s1 put", func(f *fleet) bool { return f.sawPut("s1.pbx", 2) && f.sawPut("s1.oml", 2) })

	r, err = e.Pause(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhasePaused, r.Phase)
	f.release(ctx) // the site in flight finishes while paused
	out := <-done
	require.NoError(t, out.err)
	require.Equal(t, orchestrator.PhasePaused, out.r.Phase, dump(out.r))
	assert.Equal(t, orchestrator.ReasonPaused, out.r.Reason)
	assert.Equal(t, orchestrator.SiteConverged, siteOutcomes(out.r)["s1"])
	for _, node := range nodes(names[1:]...) {
		assert.Equal(t, []uint64{1}, revisions(keyHistory(t, srv, node)), "nothing starts while paused")
	}

	r, err = e.Resume(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseRunning, r.Phase)
	assert.Equal(t, orchestrator.ReasonResumed, r.Reason)
	r, err = e.Run(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, dump(r))
	assert.Equal(t, 4, r.Counters.Converged)
}

func TestOperationsOnUnknownRollout(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	e := newEngine(t, srv)
	ops := map[string]func(context.Context, string) (orchestrator.Rollout, error){
		"get": e.Get, "pause": e.Pause, "resume": e.Resume, "abort": e.Abort, "rollback": e.Rollback, "run": e.Run,
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			_, err := op(ctx, "20200101-000000-abcdef")
			require.ErrorIs(t, err, orchestrator.ErrRolloutNotFound)
		})
	}
	_, err := e.Current(ctx)
	require.ErrorIs(t, err, orchestrator.ErrRolloutNotFound)
	_, err = e.Start(ctx, orchestrator.Plan{}, orchestrator.Strategy{Parallelism: -1})
	require.ErrorIs(t, err, orchestrator.ErrInvalidPlan)
	require.ErrorIs(t, err, orchestrator.ErrInvalidStrategy)
	require.True(t, errors.Is(err, orchestrator.ErrInvalidPlan))
}

// TestLargeRolloutOnAStockServer: a rollout's record is a header and a key per
// site, so a stock nats-server's 1 MiB max payload bounds no fleet: 2,500 sites
// (a 1 MiB record, once) run, and what a pass writes is the sites that changed.
func TestLargeRolloutOnAStockServer(t *testing.T) {
	srv := natstest.StartWith(t, func(o *server.Options) { o.MaxPayload = 1 << 20 })
	ctx := testCtx(t)
	names := make([]string, 2500)
	for i := range names {
		names[i] = fmt.Sprintf("site-%04d", i)
	}
	startFleet(t, srv, all(converge))
	e := newEngine(t, srv)
	r, err := e.Start(ctx, plan(5070, names...), orchestrator.Strategy{SiteDeadline: time.Minute})
	require.NoError(t, err)
	out := <-runAsync(ctx, e, r.ID)
	require.NoError(t, out.err)
	require.Equal(t, orchestrator.PhaseSucceeded, out.r.Phase, out.r.String())
	assert.Equal(t, 2500, out.r.Counters.Converged)

	kv, err := srv.JS.KeyValue(ctx, events.BucketRollouts)
	require.NoError(t, err)
	header, err := kv.Get(ctx, orchestrator.StateKey(r.ID))
	require.NoError(t, err)
	assert.Less(t, len(header.Value()), 64<<10, "the header holds no site")
	site, err := kv.Get(ctx, orchestrator.SiteKey(r.ID, "site-1234"))
	require.NoError(t, err)
	assert.Contains(t, string(site.Value()), `"outcome":"converged"`)
	got, err := e.Get(ctx, r.ID)
	require.NoError(t, err)
	require.Len(t, got.Sites, 2500)
	assert.Equal(t, "site-0000", got.Sites[0].Site, "plan order")
	assert.Equal(t, "site-2499", got.Sites[2499].Site)
}
