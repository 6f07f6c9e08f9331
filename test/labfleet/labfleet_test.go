package labfleet_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/services/planner"
)

// The agent suite re-run end to end against lab hosts: real agents, real NATS,
// real files, real SIP over loopback UDP between the two lab hosts of each site.

func plan(t *testing.T, sites []labfleet.Site) (*planner.Plan, map[string]string) {
	t.Helper()
	secrets := map[string]string{}
	for _, s := range sites {
		secrets[s.ID] = labfleet.NewSecret()
	}
	return mustPlan(t, sites, secrets), secrets
}

func mustPlan(tb testing.TB, sites []labfleet.Site, secrets map[string]string) *planner.Plan {
	tb.Helper()
	spec, err := planner.Parse(labfleet.FleetYAML(sites, secrets), tb.TempDir(), planner.Options{})
	require.NoError(tb, err)
	p, err := planner.BuildPlan(spec, nil)
	require.NoError(tb, err)
	return p
}

func startFleet(t *testing.T, srv *natstest.Server, sites []labfleet.Site) *labfleet.Fleet {
	t.Helper()
	f, err := labfleet.Start(context.Background(), sites, labfleet.Options{
		Dir: t.TempDir(), NATSURL: srv.URL,
		Deadlines:    node.Deadlines{Verify: 8 * time.Second, Probe: 6 * time.Second},
		PollInterval: 50 * time.Millisecond, StatusInterval: time.Second,
		QualifyTimeout: time.Second,
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.Close()) })
	return f
}

// put puts d as a rollout does: the probe waits for its order.
func put(t *testing.T, srv *natstest.Server, d events.Desired) {
	t.Helper()
	d.Rollout, d.Probe = "r-lab", events.ProbeOnOrder
	data, _, err := events.Encode(events.SourceOrchestrator, d)
	require.NoError(t, err)
	kv, err := srv.JS.KeyValue(context.Background(), events.BucketDesired)
	require.NoError(t, err)
	_, err = kv.Put(context.Background(), d.Node, data)
	require.NoError(t, err)
}

// putAll puts every node's desired state of p, as a rollout's one wave does.
func putAll(t *testing.T, srv *natstest.Server, p *planner.Plan) {
	t.Helper()
	for _, sp := range p.Sites {
		for _, np := range sp.Nodes {
			put(t, srv, np.Desired)
		}
	}
}

// requireProven checks that every result converged with a probe that ended in
// cause 1, the proof the trunk carries a call.
func requireProven(t *testing.T, got map[string]events.Result) {
	t.Helper()
	for id, r := range got {
		assert.Equal(t, events.OutcomeConverged, r.Outcome, "%s: %s", id, r.Reason)
		require.NotNil(t, r.Probe, id)
		assert.Equal(t, 1, r.Probe.HangupCause, "%s: cause 1 proves the trunk", id)
	}
}

// results collects the final result of each wanted node, ordering the probes
// as the orchestrator does: once every node of a site that was put awaits its
// probe, each is ordered to probe; once one ended otherwise, the others are
// ordered to cancel.
func results(t *testing.T, srv *natstest.Server, want int) map[string]events.Result {
	t.Helper()
	c, err := srv.JS.OrderedConsumer(context.Background(), events.StreamResults, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	kv, err := srv.JS.KeyValue(context.Background(), events.BucketDesired)
	require.NoError(t, err)
	sitePut := func(site string) []string { // the nodes of site that were put
		var out []string
		for _, role := range []string{events.RolePBX, events.RoleOML} {
			if _, err := kv.Get(context.Background(), events.NodeID(site, role)); err == nil {
				out = append(out, events.NodeID(site, role))
			}
		}
		return out
	}
	got := map[string]events.Result{}
	awaiting := map[string]uint64{}
	ordered := map[string]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		msg, err := c.Next(jetstream.FetchMaxWait(time.Until(deadline)))
		if err != nil {
			break
		}
		r, err := events.DecodeResult(msg.Data(), msg.Headers(), msg.Subject())
		require.NoError(t, err)
		if !r.Outcome.Final() {
			awaiting[r.Node] = r.Revision
		} else {
			got[r.Node] = r
		}
		site, _, _ := events.ParseNodeID(r.Node)
		nodes := sitePut(site)
		action, why := events.ProbeActionProbe, ""
		ready := true
		for _, n := range nodes {
			fin, done := got[n]
			switch {
			case done && fin.Outcome != events.OutcomeConverged:
				action, why = events.ProbeActionCancel, n+" "+string(fin.Outcome)
			case done:
			case awaiting[n] == 0:
				ready = false
			}
		}
		if !ready && action == events.ProbeActionProbe {
			continue
		}
		for _, n := range nodes {
			if _, done := got[n]; done || awaiting[n] == 0 || ordered[n] {
				continue
			}
			ordered[n] = true
			s, role, _ := events.ParseNodeID(n)
			body, _ := json.Marshal(events.ProbeOrder{Rollout: "r-lab", Revision: awaiting[n], Action: action, Reason: why})
			_, err := srv.Conn.Request(events.ProbeSubject(s, role), body, 5*time.Second)
			require.NoError(t, err)
		}
	}
	require.Len(t, got, want, "results within 60s")
	return got
}

func TestLabFleetConvergesInAllScenarios(t *testing.T) {
	srv := natstest.Start(t)
	sites := labfleet.Sites("conv", 200, 3) // 0..9 belong to the demo and the lab command
	p, secrets := plan(t, sites)
	f := startFleet(t, srv, sites)
	putAll(t, srv, p)
	got := results(t, srv, 6)
	requireProven(t, got)
	for id, r := range got {
		assert.True(t, r.Trunk.Reachable, id)
	}
	for _, s := range sites {
		b, err := os.ReadFile(filepath.Join(f.ConfigDir(s.ID+".pbx"), "pbxfleet_sip.conf"))
		require.NoError(t, err)
		assert.Contains(t, string(b), "secret="+secrets[s.ID])
	}
}

func TestLabFleetCatchesWhatQualifyMisses(t *testing.T) {
	srv := natstest.Start(t)
	sites := labfleet.Sites("fail", 210, 3)
	p, _ := plan(t, sites)
	startFleet(t, srv, sites)
	byNode := map[string]events.Desired{}
	for _, sp := range p.Sites {
		for _, np := range sp.Nodes {
			byNode[np.Desired.Node] = np.Desired
		}
	}
	// fail-1: the PBX points at a port OMniLeads does not listen on.
	wrongPort := byNode["fail-1.pbx"]
	wrongPort.Trunk.OMLPort = 5199
	put(t, srv, wrongPort)
	put(t, srv, byNode["fail-1.oml"])
	// fail-2: the seed's own mistake: the PBX has another secret than OMniLeads.
	mismatch := byNode["fail-2.pbx"]
	mismatch.Trunk.Secret = "omnileads-not-the-oml-one"
	put(t, srv, mismatch)
	put(t, srv, byNode["fail-2.oml"])
	// fail-3: OMniLeads has no trunk at all; only the PBX is configured.
	put(t, srv, byNode["fail-3.pbx"])

	got := results(t, srv, 5)
	r := got["fail-1.pbx"]
	assert.Equal(t, events.OutcomeRolledBack, r.Outcome)
	assert.Contains(t, r.Reason, "UNREACHABLE")

	r = got["fail-2.pbx"]
	assert.Equal(t, events.OutcomeRolledBack, r.Outcome)
	assert.True(t, passed(r, node.CheckQualify), "qualify stays OK with a wrong secret, as on real Asterisk")
	require.NotNil(t, r.Probe)
	assert.Equal(t, "CONGESTION:21", r.Probe.DialStatus+":"+strconv.Itoa(r.Probe.HangupCause))
	r = got["fail-2.oml"]
	assert.Equal(t, events.OutcomeRolledBack, r.Outcome)
	require.NotNil(t, r.Probe)
	assert.Equal(t, 21, r.Probe.HangupCause, "OML -> PBX with the wrong password is rejected too")

	r = got["fail-3.pbx"]
	assert.Equal(t, events.OutcomeRolledBack, r.Outcome)
	assert.True(t, passed(r, node.CheckQualify), "OMniLeads answers OPTIONS with 401 even without a trunk")
	require.NotNil(t, r.Probe)
	assert.Equal(t, 21, r.Probe.HangupCause)
	assert.True(t, strings.Contains(r.Reason, "probe"), r.Reason)
}

func passed(r events.Result, name string) bool {
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Passed
		}
	}
	return false
}
