package orchestrator

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
)

// publishResults publishes n converged results of node s<i>.pbx, revision 1.
func publishResults(ctx context.Context, t *testing.T, srv *natstest.Server, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		site := fmt.Sprintf("s%d", i)
		now := time.Now().UTC()
		res := events.Result{
			Node: events.NodeID(site, events.RolePBX), Revision: 1, Rollout: "r", Outcome: events.OutcomeConverged,
			StartedAt: now, FinishedAt: now, Trunk: events.TrunkState{State: "OK", Reachable: true},
		}
		data, id, err := events.Encode(events.NodeSource(site, events.RolePBX), res)
		require.NoError(t, err)
		_, err = srv.JS.PublishMsg(ctx, &nats.Msg{Subject: events.ResultSubject(site, events.RolePBX), Data: data,
			Header: nats.Header(events.PublishHeader(id))})
		require.NoError(t, err)
	}
}

// startFeedTest starts a server and an engine on it, with a context that ends
// with the test.
func startFeedTest(t *testing.T) (context.Context, *natstest.Server, *Engine, *handles) {
	t.Helper()
	srv := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	e := New(srv.JS, srv.Conn, WithLogger(slog.New(slog.DiscardHandler)))
	h, err := e.handles(ctx)
	require.NoError(t, err)
	return ctx, srv, e, h
}

func takenNodes(f *feed) []string {
	var out []string
	for _, o := range f.take() {
		out = append(out, o.res.Node)
	}
	return out
}

// TestFeedHealsAStalledConsumer: with its consumer stopped (as stalled after a
// JetStream leader change), the feed still gets every stored result, by
// sequence: catchUp after its grace, heal on its second call without progress.
func TestFeedHealsAStalledConsumer(t *testing.T) {
	ctx, srv, e, h := startFeedTest(t)

	publishResults(ctx, t, srv, 0, 2) // before the feed's start: never read
	f, err := e.openFeed(ctx, 3)
	require.NoError(t, err)
	f.close() // the consumer delivers nothing from now on

	publishResults(ctx, t, srv, 2, 3)
	require.NoError(t, f.catchUp(ctx, h.results))
	require.Equal(t, []string{"s2.pbx", "s3.pbx", "s4.pbx"}, takenNodes(f))

	publishResults(ctx, t, srv, 5, 2)
	read, err := f.heal(ctx, h.results)
	require.NoError(t, err)
	require.False(t, read, "the first call gives the consumer time")
	read, err = f.heal(ctx, h.results)
	require.NoError(t, err)
	require.True(t, read, "the second call without progress reads by sequence")
	require.Equal(t, []string{"s5.pbx", "s6.pbx"}, takenNodes(f))
	read, err = f.heal(ctx, h.results)
	require.NoError(t, err)
	require.False(t, read, "nothing left to read")
}

// TestFeedTakesEachResultOnce: the consumer and fill deliver the same
// sequences; each result is taken exactly once, in order.
func TestFeedTakesEachResultOnce(t *testing.T) {
	ctx, srv, e, h := startFeedTest(t)
	f, err := e.openFeed(ctx, 1)
	require.NoError(t, err)
	defer f.close()

	const n = 200
	publishResults(ctx, t, srv, 0, n)
	require.NoError(t, f.fill(ctx, h.results, n))
	require.NoError(t, f.catchUp(ctx, h.results))
	// The consumer delivers its copies too; they must be dropped.
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.consumed == n
	}, 10*time.Second, 10*time.Millisecond, "the consumer delivered every result as well")
	got := takenNodes(f)
	require.Len(t, got, n)
	for i, node := range got {
		require.Equal(t, fmt.Sprintf("s%d.pbx", i), node)
	}
}
