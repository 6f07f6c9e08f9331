package fault

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/proctest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// pickedUp is what `pbxfleet serve` logs when it takes over a rollout whose
// driver died.
const pickedUp = "picking up the active rollout"

// TestControlPlaneKilledMidRollout: `pbxfleet serve` (embedded NATS with
// JetStream and the orchestrator in one process) is SIGKILLed in the middle of
// a wave and restarted on the same data dir and port; the rollout completes,
// and every node got its revision once and reported it once.
func TestControlPlaneKilledMidRollout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	dataDir := t.TempDir()
	listen := "127.0.0.1:" + strconv.Itoa(proctest.FreePort(t))
	url := "nats://" + listen
	args := []string{"serve", "--data", dataDir, "--listen", listen, "--log-format", "text"}
	first := proctest.Start(t, "serve-1", bins.PBXFleet, args...)
	nc, js := proctest.DialNATS(t, "fault test", url)

	sites := labfleet.Sites("cpk", addrServeKill, sitesPerRollout)
	plan := fleetPlan(t, sites)
	startLabFleet(t, sites, url)
	id := startRollout(ctx, t, nc, plan.RolloutPlan(), waveStrategy())
	at := awaitRecord(ctx, t, js, id, "a wave after the canary in flight", midWave)
	first.Kill(t)
	sig, ok := first.KilledBy()
	require.True(t, ok && sig == syscall.SIGKILL, "serve ended by %v", first.Err())
	t.Logf("injected: SIGKILL to pbxfleet serve (pid %d; embedded NATS + orchestrator) during rollout %s: %s", first.PID(), id, describeWave(at))

	second := proctest.Start(t, "serve-2", bins.PBXFleet, args...)
	t.Logf("injected: restarted pbxfleet serve (pid %d) on the same data dir and %s", second.PID(), listen)
	r := awaitTerminal(t, js, id, 70*time.Second)
	require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, "%s: %s", r, r.Message)
	require.Equal(t, sitesPerRollout, r.Counters.Converged, r.String())
	require.Contains(t, second.Output(), pickedUp, "the restarted serve drove the rollout on")
	n := checkOncePerNode(ctx, t, js, r)
	t.Logf("checked: rollout %s %s (%d/%d sites converged) after the restart; %d nodes: each exactly 1 put of its revision in %s history and exactly 1 converged result in %s, and no other result of the rollout",
		id, r.Phase, r.Counters.Converged, r.Counters.Sites, n, events.BucketDesired, events.StreamResults)
}

// TestOrchestratorKilledMidWave: NATS runs as its own process (the upstream
// nats-server binary) and the orchestrator as a separate `pbxfleet serve
// --nats-url` process. The orchestrator is SIGKILLed twice, at the two crash
// windows of a wave: right after it marked a wave's sites in flight (before
// or while it puts their desired states), and right after the next wave's
// desired states are all on their keys (results then arrive with no
// orchestrator alive). Each time another one is started and picks the rollout
// up; it completes, and no node gets its revision put or applied twice.
func TestOrchestratorKilledMidWave(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	port := strconv.Itoa(proctest.FreePort(t))
	url := "nats://127.0.0.1:" + port
	natsProc := proctest.Start(t, "nats-server", bins.NATSServer, "-js", "-sd", t.TempDir(), "-a", "127.0.0.1", "-p", port, "-n", "fault-nats")
	args := []string{"serve", "--nats-url", url, "--log-format", "text"}
	nc, js := proctest.DialNATS(t, "fault test", url)
	first := proctest.Start(t, "orchestrator-1", bins.PBXFleet, args...)

	sites := labfleet.Sites("ork", addrDriverKill, sitesPerRollout)
	plan := fleetPlan(t, sites)
	startLabFleet(t, sites, url)
	id := startRollout(ctx, t, nc, plan.RolloutPlan(), waveStrategy())

	// Kill 1: the record says wave 2's sites are in flight.
	at := awaitRecord(ctx, t, js, id, "a wave after the canary in flight", midWave)
	first.Kill(t)
	requireSIGKILL(t, first)
	t.Logf("injected: SIGKILL to the orchestrator (pbxfleet serve --nats-url, pid %d) as it marked wave %d in flight: %s", first.PID(), at.Wave, describeWave(at))
	require.False(t, natsProc.Exited(), "nats-server is untouched")
	stalled, err := readRollout(ctx, js, id)
	require.NoError(t, err)
	require.False(t, stalled.Phase.Terminal(), "the rollout is not finished without its driver: %s", stalled)
	put, reported := wavePuts(ctx, t, js, at, at.Wave)
	t.Logf("checked: with no orchestrator the record stays %s; of wave %d's nodes %d had their revision put, %d results stored",
		stalled.Phase, at.Wave, put, reported)

	// Kill 2: every node of the next wave has its revision on its key.
	second := proctest.Start(t, "orchestrator-2", bins.PBXFleet, args...)
	t.Logf("injected: started orchestrator 2 (pid %d)", second.PID())
	next := at.Wave + 1
	var nextNodes []string
	for _, s := range at.Sites {
		if s.Wave == next {
			nextNodes = append(nextNodes, events.NodeID(s.Site, events.RolePBX), events.NodeID(s.Site, events.RoleOML))
		}
	}
	awaitPuts(ctx, t, js, id, nextNodes)
	second.Kill(t)
	requireSIGKILL(t, second)
	require.Contains(t, second.Output(), pickedUp, "orchestrator 2 picked the rollout up")
	t.Logf("injected: SIGKILL to orchestrator 2 (pid %d) once wave %d's %d nodes all had their revision put", second.PID(), next+1, len(nextNodes))
	mid, err := readRollout(ctx, js, id)
	require.NoError(t, err)
	require.False(t, mid.Phase.Terminal(), mid.String())

	third := proctest.Start(t, "orchestrator-3", bins.PBXFleet, args...)
	t.Logf("injected: started orchestrator 3 (pid %d)", third.PID())
	r := awaitTerminal(t, js, id, 60*time.Second)
	require.Equal(t, orchestrator.PhaseSucceeded, r.Phase, "%s: %s", r, r.Message)
	require.Equal(t, sitesPerRollout, r.Counters.Converged, r.String())
	require.Contains(t, third.Output(), pickedUp, "orchestrator 3 picked the rollout up")
	n := checkOncePerNode(ctx, t, js, r)
	t.Logf("checked: nats-server (pid %d) kept running; orchestrators 2 and 3 each picked rollout %s up and it %s (%d/%d converged); %d nodes: each exactly 1 put of its revision and 1 converged result, no other result of the rollout",
		natsProc.PID(), id, r.Phase, r.Counters.Converged, r.Counters.Sites, n)
}

func requireSIGKILL(t *testing.T, p *proctest.Proc) {
	t.Helper()
	sig, ok := p.KilledBy()
	require.True(t, ok && sig == syscall.SIGKILL, "%s ended by %v (exit code %d)", p.Name, sig, p.ExitCode())
}

// wavePuts counts, for wave w of rollout r, the nodes whose key got r's
// revision and the results stored for it.
func wavePuts(ctx context.Context, t *testing.T, js jetstream.JetStream, r orchestrator.Rollout, w int) (put, reported int) {
	t.Helper()
	all := allResults(ctx, t, js)
	for _, s := range r.Sites {
		if s.Wave != w {
			continue
		}
		for _, ns := range s.Nodes {
			id := events.NodeID(s.Site, ns.Role)
			for _, d := range desiredHistory(ctx, t, js, id) {
				if d.Rollout == r.ID && d.Revision == ns.Revision {
					put++
				}
			}
			reported += len(resultsFor(all, id, ns.Revision))
		}
	}
	return put, reported
}

// awaitPuts watches the desired bucket until every one of nodes holds a
// desired state of rollout id.
func awaitPuts(ctx context.Context, t *testing.T, js jetstream.JetStream, id string, nodes []string) {
	t.Helper()
	kv, err := js.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	w, err := kv.WatchAll(ctx)
	require.NoError(t, err)
	defer func() { _ = w.Stop() }()
	want := map[string]bool{}
	for _, n := range nodes {
		want[n] = true
	}
	for len(want) > 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("desired states of rollout %s never put on %v", id, want)
		case e := <-w.Updates():
			if e == nil || e.Operation() != jetstream.KeyValuePut || !want[e.Key()] {
				continue
			}
			if d, err := events.DecodeDesired(e.Value(), nil, e.Key()); err == nil && d.Rollout == id {
				delete(want, e.Key())
			}
		}
	}
}
