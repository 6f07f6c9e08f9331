package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/creds"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// TestRolloutAndStatusCommands runs `pbxfleet rollout` and `pbxfleet status` as a
// user would, against a real NATS server, the orchestrator service and a lab
// fleet with real agents, and checks the exit statuses the README promises:
// rollout 0 when it succeeded, 2 on invalid input; status 0 when healthy, 1 on
// drift; and a second rollout of the same file repairs the drift.
func TestRolloutAndStatusCommands(t *testing.T) {
	sites := labfleet.Sites("cmd", 50, 2)
	srv, fleet := startCommandFleet(t, sites, "")
	secrets := map[string]string{}
	for _, s := range sites {
		secrets[s.ID] = labfleet.NewSecret()
	}
	fleetFile := filepath.Join(t.TempDir(), "fleet.yaml")
	require.NoError(t, os.WriteFile(fleetFile, labfleet.FleetYAML(sites, secrets), 0o600))

	r := run(t, "", "rollout", "start", fleetFile, "--nats-url", srv.URL, "--canary", "1", "--wave-size", "1")
	require.Equal(t, 0, opcli.ExitCode(r.Err), r.All())
	assert.Regexp(t, `rollout \S+ succeeded: 2 sites, 2 converged`, r.Stdout)
	for _, s := range secrets {
		assert.NotContains(t, r.All(), s)
	}

	healthy := func() bool { return opcli.ExitCode(run(t, "", "status", "--nats-url", srv.URL).Err) == 0 }
	require.Eventually(t, healthy, 20*time.Second, 300*time.Millisecond, "status exits 0 once every node reported")

	// A hand edit of a managed file: status names it and exits 1.
	path := filepath.Join(fleet.ConfigDir("cmd-1.pbx"), "pbxfleet_sip.conf")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(b, "nat=force_rport\n"...), 0o644))
	require.Eventually(t, func() bool {
		st := run(t, "", "status", "--nats-url", srv.URL)
		return opcli.ExitCode(st.Err) == 1 && strings.Contains(st.Stdout, "pbxfleet_sip.conf")
	}, 20*time.Second, 300*time.Millisecond, "status reports the drift and exits 1")

	// The same fleet file again: the drifted node is put again, the rest skipped.
	r = run(t, "", "rollout", "start", fleetFile, "--nats-url", srv.URL, "--canary", "0", "--wave-size", "2")
	require.Equal(t, 0, opcli.ExitCode(r.Err), r.All())
	assert.Regexp(t, `succeeded: 2 sites, 1 converged, 0 failed, 0 unreachable, 1 skipped`, r.Stdout)
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "nat=force_rport", "the rollout rewrote the drifted file")
	require.Eventually(t, healthy, 20*time.Second, 300*time.Millisecond, "healthy again")

	// Invalid input: exit 2, nothing started.
	require.NoError(t, os.WriteFile(fleetFile, []byte("version: 1\nsites:\n  - id: Bad Site\n"), 0o600))
	r = run(t, "", "rollout", "start", fleetFile, "--nats-url", srv.URL)
	assert.Equal(t, 2, opcli.ExitCode(r.Err), r.All())
}

// TestStatusHealthyRightAfterRollout: the moment `rollout` returns success,
// `status` says every node is healthy. The agents' periodic status refresh is an
// hour away, so only the status each agent writes as its apply ends can say so.
func TestStatusHealthyRightAfterRollout(t *testing.T) {
	sites := labfleet.Sites("now", 60, 3)
	srv := startOrchestrator(t)
	startLabFleetEvery(t, srv.URL, sites, "", time.Hour)
	secrets := map[string]string{}
	for _, s := range sites {
		secrets[s.ID] = labfleet.NewSecret()
	}
	fleetFile := filepath.Join(t.TempDir(), "fleet.yaml")
	require.NoError(t, os.WriteFile(fleetFile, labfleet.FleetYAML(sites, secrets), 0o600))

	r := run(t, "", "rollout", "start", fleetFile, "--nats-url", srv.URL, "--canary", "1", "--wave-size", "2")
	require.Equal(t, 0, opcli.ExitCode(r.Err), r.All())
	st := run(t, "", "status", "--nats-url", srv.URL) // at once: no wait, no retry
	assert.Equal(t, 0, opcli.ExitCode(st.Err), "status right after the rollout:\n%s", st.All())
	assert.Equal(t, 6, strings.Count(st.Stdout, " ok "), st.Stdout)

	// --site names what to show: a site no node belongs to is bad input.
	for _, tc := range []struct {
		sites []string
		code  int
		nodes int
	}{
		{[]string{sites[0].ID}, 0, 2},
		{[]string{"nope"}, 2, 0},
		{[]string{sites[0].ID, "nope"}, 2, 0},
	} {
		args := []string{"status", "--nats-url", srv.URL}
		for _, s := range tc.sites {
			args = append(args, "--site", s)
		}
		st := run(t, "", args...)
		assert.Equal(t, tc.code, opcli.ExitCode(st.Err), "%v:\n%s", tc.sites, st.All())
		assert.Equal(t, tc.nodes, strings.Count(st.Stdout, " ok "), st.Stdout)
		if tc.code == 2 {
			assert.ErrorContains(t, st.Err, `--site "nope": no node of such a site`)
		}
	}
}

// startCommandFleet starts a real NATS server, the orchestrator service and a
// lab fleet whose agents hold the curve keys in keyDir (when set).
func startCommandFleet(t *testing.T, sites []labfleet.Site, keyDir string) (*natstest.Server, *labfleet.Fleet) {
	t.Helper()
	srv := startOrchestrator(t)
	return srv, startLabFleet(t, srv.URL, sites, keyDir)
}

// startOrchestrator starts a real NATS server and the orchestrator service.
func startOrchestrator(t *testing.T) *natstest.Server {
	t.Helper()
	srv := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = orchestrator.New(srv.JS, srv.Conn).Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv
}

// startLabFleet starts the lab hosts and agents of sites against the NATS
// server at url; they stop when the test ends, or earlier with Close.
func startLabFleet(t *testing.T, url string, sites []labfleet.Site, keyDir string) *labfleet.Fleet {
	t.Helper()
	return startLabFleetEvery(t, url, sites, keyDir, 300*time.Millisecond)
}

// startLabFleetEvery is startLabFleet with the agents' status refresh period.
func startLabFleetEvery(t *testing.T, url string, sites []labfleet.Site, keyDir string, statusEvery time.Duration) *labfleet.Fleet {
	t.Helper()
	fleet, err := labfleet.Start(context.Background(), sites, labfleet.Options{
		Dir: t.TempDir(), NATSURL: url, KeyDir: keyDir, Deadlines: node.Deadlines{Verify: 20 * time.Second},
		PollInterval: 50 * time.Millisecond, StatusInterval: statusEvery,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = fleet.Close() })
	return fleet
}

// TestSealedRolloutSkipsUnchangedSites: `rollout --seal` of the same fleet file
// twice leaves every site alone the second time (the sealed secret is reused,
// not sealed again with a fresh nonce), and a changed secret re-applies only
// its site. The agents open the sealed secrets, so the sites converge.
func TestSealedRolloutSkipsUnchangedSites(t *testing.T) {
	sites := labfleet.Sites("sealcmd", 55, 2)
	keyDir := filepath.Join(t.TempDir(), "creds")
	var nodes []string
	for _, s := range sites {
		nodes = append(nodes, events.NodeID(s.ID, events.RolePBX), events.NodeID(s.ID, events.RoleOML))
	}
	_, err := creds.Generate(keyDir, nodes)
	require.NoError(t, err)
	srv, _ := startCommandFleet(t, sites, keyDir)

	secrets := map[string]string{sites[0].ID: labfleet.NewSecret(), sites[1].ID: labfleet.NewSecret()}
	fleetFile := filepath.Join(t.TempDir(), "fleet.yaml")
	rollout := func() result {
		require.NoError(t, os.WriteFile(fleetFile, labfleet.FleetYAML(sites, secrets), 0o600))
		return run(t, "", "rollout", "start", fleetFile, "--nats-url", srv.URL, "--seal", keyDir, "--canary", "0", "--wave-size", "2")
	}

	r := rollout()
	require.Equal(t, 0, opcli.ExitCode(r.Err), r.All())
	assert.Regexp(t, `succeeded: 2 sites, 2 converged, 0 failed, 0 unreachable, 0 skipped`, r.Stdout)
	stored := desiredValues(t, srv)
	for _, s := range secrets {
		assert.NotContains(t, stored, s, "the secret is sealed at rest")
	}
	assert.Equal(t, 4, strings.Count(stored, `"sealed_secret"`))

	r = rollout()
	require.Equal(t, 0, opcli.ExitCode(r.Err), r.All())
	assert.Regexp(t, `succeeded: 2 sites, 0 converged, 0 failed, 0 unreachable, 2 skipped`, r.Stdout)
	assert.Equal(t, stored, desiredValues(t, srv), "nothing was put again")

	// plan --current --seal opens the sealed secrets and sees the rotation;
	// without --seal it can only compare the other fields.
	secrets[sites[1].ID] = labfleet.NewSecret()
	require.NoError(t, os.WriteFile(fleetFile, labfleet.FleetYAML(sites, secrets), 0o600))
	rotated := events.NodeID(sites[1].ID, events.RolePBX)
	p := run(t, "", "plan", fleetFile, "--current", "--nats-url", srv.URL, "--seal", keyDir)
	require.Equal(t, 0, opcli.ExitCode(p.Err), p.All())
	assert.Contains(t, p.Stdout, "node "+rotated+": changed, revision 1 -> 2")
	assert.Contains(t, p.Stdout, "~ secret changed")
	assert.Contains(t, p.Stdout, "node "+events.NodeID(sites[0].ID, events.RolePBX)+": unchanged at revision 1")
	withSeal := p.All()
	p = run(t, "", "plan", fleetFile, "--current", "--nats-url", srv.URL)
	require.Equal(t, 0, opcli.ExitCode(p.Err), p.All())
	assert.Contains(t, p.Stdout, "node "+rotated+": unchanged at revision 1", "sealed secrets are not compared without --seal")
	for _, s := range secrets {
		assert.NotContains(t, withSeal+p.All(), s)
	}

	r = rollout()
	require.Equal(t, 0, opcli.ExitCode(r.Err), r.All())
	assert.Regexp(t, `succeeded: 2 sites, 1 converged, 0 failed, 0 unreachable, 1 skipped`, r.Stdout)
}

// desiredValues returns every desired state in the bucket as stored,
// concatenated in key order.
func desiredValues(t *testing.T, srv *natstest.Server) string {
	t.Helper()
	raw := desiredRaw(t, srv)
	var b strings.Builder
	for _, k := range sortedKeys(raw) {
		b.Write(raw[k])
		b.WriteByte('\n')
	}
	return b.String()
}

// desiredRaw reads every value of the pbxfleet_desired bucket, by key.
func desiredRaw(t *testing.T, srv *natstest.Server) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	kv, err := srv.JS.KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	keys, err := kv.ListKeys(ctx)
	require.NoError(t, err)
	out := map[string][]byte{}
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		require.NoError(t, err)
		out[k] = e.Value()
	}
	return out
}
