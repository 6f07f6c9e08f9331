package orchestrator_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// TestOldRolloutsAreDeleted: with room for 2, the third and fourth rollouts
// delete the records and plans of the oldest ones; the kept ones can still be
// rolled back, and a rollback makes a rollout recent again.
func TestOldRolloutsAreDeleted(t *testing.T) {
	srv := natstest.Start(t)
	ctx := testCtx(t)
	startFleet(t, srv, all(converge))
	e := orchestrator.New(srv.JS, srv.Conn, orchestrator.WithLogger(quiet()), orchestrator.WithKeepRollouts(2))
	runOne := func(port int) string {
		r, err := e.Start(ctx, plan(port, "s1", "s2"), orchestrator.Strategy{WaveSize: 2, SiteDeadline: 30 * time.Second})
		require.NoError(t, err)
		r, err = e.Run(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, dump(r))
		return r.ID
	}
	var ids []string
	for _, port := range []int{5070, 5080} {
		ids = append(ids, runOne(port))
	}
	assert.ElementsMatch(t, ids, storedRollouts(t, srv))

	// Rolling back the older one makes it the most recently written.
	r, err := e.Rollback(ctx, ids[0])
	require.NoError(t, err)
	r, err = e.Run(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseRolledBack, r.Phase, dump(r))

	ids = append(ids, runOne(5090)) // keeps itself and ids[0]: ids[1] goes
	assert.ElementsMatch(t, []string{ids[0], ids[2]}, storedRollouts(t, srv))
	_, err = e.Get(ctx, ids[1])
	require.ErrorIs(t, err, orchestrator.ErrRolloutNotFound)

	ids = append(ids, runOne(5100))
	assert.ElementsMatch(t, []string{ids[2], ids[3]}, storedRollouts(t, srv))
	// What is kept still works: the last rollout rolls back to the one before.
	r, err = e.Rollback(ctx, ids[3])
	require.NoError(t, err)
	r, err = e.Run(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, orchestrator.PhaseRolledBack, r.Phase, dump(r))
	h := keyHistory(t, srv, "s1.pbx")
	assert.Equal(t, 5090, h[len(h)-1].Trunk.PBXPort, "the rollback put the previous rollout's intent back")
}

// storedRollouts returns the rollout ids that have a record, and checks that
// every plan key in the bucket belongs to one of them.
func storedRollouts(t *testing.T, srv *natstest.Server) []string {
	t.Helper()
	ctx := context.Background()
	kv, err := srv.JS.KeyValue(ctx, events.BucketRollouts)
	require.NoError(t, err)
	keys, err := kv.ListKeys(ctx)
	require.NoError(t, err)
	var ids, planIDs, siteIDs []string
	for k := range keys.Keys() {
		switch {
		case k == orchestrator.KeyCurrent || k == orchestrator.KeyLast:
		case strings.HasPrefix(k, orchestrator.StateKeyPrefix):
			id, site, isSite := strings.Cut(strings.TrimPrefix(k, orchestrator.StateKeyPrefix), ".site.")
			if isSite && site != "" {
				siteIDs = append(siteIDs, id)
			} else {
				ids = append(ids, id)
			}
		case strings.HasPrefix(k, orchestrator.PlanKeyPrefix):
			id, _, _ := strings.Cut(strings.TrimPrefix(k, orchestrator.PlanKeyPrefix), ".")
			planIDs = append(planIDs, id)
		}
	}
	for _, id := range planIDs {
		assert.True(t, slices.Contains(ids, id), "plan key of deleted rollout %s left behind", id)
	}
	for _, id := range siteIDs {
		assert.True(t, slices.Contains(ids, id), "site key of deleted rollout %s left behind", id)
	}
	return ids
}
