package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// The verbs that steer a rollout (rolloutOpCommands), in README order.
var rolloutVerbs = []string{"watch", events.RolloutPause, events.RolloutResume, events.RolloutAbort, events.RolloutRollback}

// TestRolloutVerbsPauseWatchResume drives a detached rollout with pause, watch
// and resume as an operator would. The canary site's agents are not running at
// first, so its wave stays in flight until the test starts them: pause exits 0
// and the rollout is paused; watch of a paused rollout returns at once with the
// table and exit 3; the canary converges while paused but the next wave does
// not start; resume finishes the rollout (exit 0) and watch then prints the
// final summary and exits 0.
func TestRolloutVerbsPauseWatchResume(t *testing.T) {
	sites := labfleet.Sites("verbs", 58, 2)
	canary, second := sites[0], sites[1]
	srv, _ := startCommandFleet(t, []labfleet.Site{second}, "")
	secrets := newSecrets(sites)
	fleetFile := writeFleetFile(t, sites, secrets)

	r := run(t, "", "rollout", "start", fleetFile, "--nats-url", srv.URL, "--canary-site", canary.ID, "--wave-size", "1", "--detach")
	require.Equal(t, 0, r.Code(), r.All())
	id := startedID(t, r)
	assert.Contains(t, r.Stdout, "watch it with: pbxfleet rollout watch "+id+"\n")
	awaitRollout(t, srv, id, "the canary's desired states are put", func(ro orchestrator.Rollout) bool {
		s := siteOf(ro, canary.ID)
		return s.Outcome == orchestrator.SiteInFlight && allPut(s)
	})

	r = verb(t, srv, "pause", id)
	require.Equal(t, 0, r.Code(), r.All())
	assert.Equal(t, "rollout "+id+": paused\n", r.Stdout)
	assert.Equal(t, orchestrator.PhasePaused, readRollout(t, srv, id).Phase)
	r = verb(t, srv, "pause", id)
	assert.Equal(t, 0, r.Code(), "pausing a paused rollout changes nothing: %s", r.All())
	assert.Equal(t, "rollout "+id+": paused\n", r.Stdout)

	// watch of a paused rollout returns at once, with exit 3 as the README says.
	r = verb(t, srv, "watch", id)
	assert.Equal(t, 3, r.Code(), r.All())
	assert.EqualError(t, r.Err, "rollout "+id+" paused: "+orchestrator.MsgPaused)
	assert.Contains(t, r.Stdout, "rollout "+id+" paused: 2 sites, 0 converged, 0 failed, 0 unreachable, 0 skipped, 1 in flight, 1 not started\n")
	assert.Contains(t, r.Stdout, "reason: "+orchestrator.ReasonPaused+": "+orchestrator.MsgPaused+"\n")
	assert.Regexp(t, `│ verbs-1 │ 1 +│ in_flight │ pbx`, r.Stdout)
	assert.Regexp(t, `│ verbs-2 │ 2 +│ pending +│ pbx`, r.Stdout)

	// Without an id, watch follows the active rollout; --output json prints its record.
	r = verb(t, srv, "watch", "", "--output", "json")
	assert.Equal(t, 3, r.Code(), r.All())
	doc := jsonRecord(t, r.Stdout)
	assert.Equal(t, id, doc.ID)
	assert.Equal(t, "paused", doc.Phase)

	// The canary's agents come up: its sites finish while paused, and no new site starts.
	startLabFleet(t, srv.URL, []labfleet.Site{canary}, "")
	ro := awaitRollout(t, srv, id, "the canary converges while paused", func(ro orchestrator.Rollout) bool {
		return siteOf(ro, canary.ID).Outcome == orchestrator.SiteConverged
	})
	assert.Equal(t, orchestrator.PhasePaused, ro.Phase)
	assert.Equal(t, orchestrator.SitePending, siteOf(ro, second.ID).Outcome, "paused: the second wave did not start")
	assert.Equal(t, []string{events.NodeID(canary.ID, events.RoleOML), events.NodeID(canary.ID, events.RolePBX)},
		sortedKeys(desiredStates(t, srv)), "nothing was put on the second site while paused")

	r = verb(t, srv, "resume", id)
	require.Equal(t, 0, r.Code(), r.All())
	assert.True(t, strings.HasPrefix(r.Stdout, "rollout "+id+": running\n"), r.Stdout)
	assert.Regexp(t, `wave 2  verbs-2 +converged +pbx r1 converged \(trunk `, r.Stdout)
	assert.Contains(t, r.Stdout, "rollout "+id+" succeeded: 2 sites, 2 converged, 0 failed, 0 unreachable, 0 skipped\n")

	r = verb(t, srv, "watch", id)
	assert.Equal(t, 0, r.Code(), r.All())
	assert.Contains(t, r.Stdout, "rollout "+id+" succeeded: 2 sites, 2 converged, 0 failed, 0 unreachable, 0 skipped\n")
	assert.Contains(t, r.Stdout, "reason: "+orchestrator.ReasonSucceeded+": rollout succeeded: 2 converged, 0 failed, 0 unreachable, 0 skipped\n")
	assert.Regexp(t, `│ verbs-1 │ 1 +│ converged │ pbx +│ 1 +│ converged │`, r.Stdout)
	for _, s := range secrets {
		assert.NotContains(t, r.All(), s)
	}
}

// TestRolloutVerbsAbort aborts a running rollout whose second wave is in flight
// (that site's agents were stopped after the first rollout): abort puts the
// previous intent back on the site that did not converge, waits for its agents,
// and exits 1 with the rollout aborted; the converged canary keeps the new intent.
func TestRolloutVerbsAbort(t *testing.T) {
	sites := labfleet.Sites("verbs", 58, 2)
	canary, second := sites[0], sites[1]
	srv, _ := startCommandFleet(t, []labfleet.Site{canary}, "")
	secondAgents := startLabFleet(t, srv.URL, []labfleet.Site{second}, "")
	before := newSecrets(sites)
	fleetFile := writeFleetFile(t, sites, before)
	r := run(t, "", "rollout", "start", fleetFile, "--nats-url", srv.URL, "--canary", "0", "--wave-size", "2")
	require.Equal(t, 0, r.Code(), r.All())

	_ = secondAgents.Close() // the second site goes dark
	after := newSecrets(sites)
	writeFleetFile(t, sites, after, fleetFile)
	r = run(t, "", "rollout", "start", fleetFile, "--nats-url", srv.URL, "--canary-site", canary.ID, "--wave-size", "1", "--detach")
	require.Equal(t, 0, r.Code(), r.All())
	id := startedID(t, r)
	awaitRollout(t, srv, id, "the canary converged and the second wave is put", func(ro orchestrator.Rollout) bool {
		s := siteOf(ro, second.ID)
		return siteOf(ro, canary.ID).Outcome == orchestrator.SiteConverged && s.Outcome == orchestrator.SiteInFlight && allPut(s)
	})

	done := make(chan result, 1)
	go func() { done <- run(t, "", "rollout", "abort", id, "--nats-url", srv.URL) }()
	awaitRollout(t, srv, id, "the abort put the second site's previous intent back", func(ro orchestrator.Rollout) bool {
		s := siteOf(ro, second.ID)
		return ro.Phase == orchestrator.PhaseAborting && len(s.Nodes) == 2 && s.Nodes[0].RestoreAt != nil && s.Nodes[1].RestoreAt != nil
	})
	assertDesired(t, srv, canary.ID, 2, after[canary.ID])
	assertDesired(t, srv, second.ID, 3, before[second.ID])

	returned := startLabFleet(t, srv.URL, []labfleet.Site{second}, "") // its agents come back and apply the restore
	var res result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("abort did not return within 30s")
	}
	assert.Equal(t, 1, res.Code(), "README: exit 1 when the rollout was aborted: %s", res.All())
	assert.True(t, strings.HasPrefix(res.Stdout, "rollout "+id+": aborting\n"), res.Stdout)
	assert.Regexp(t, `rollback verbs-2 +restored: pbx r3 converged; oml r3 converged`, res.Stdout)
	assert.Regexp(t, `│ verbs-1 │ 1 +│ converged │ pbx +│ 2 +│ converged │`, res.Stdout)
	assert.Regexp(t, `│ verbs-2 │ 2 +│ cancelled │ pbx +│ 3 \(restored 1\) +│ converged │`, res.Stdout)
	assert.Contains(t, res.Stdout, "rollout "+id+" aborted: 2 sites, 1 converged, 0 failed, 0 unreachable, 0 skipped, 1 cancelled, 2 restored, 0 restore failed\n")
	kept := "rollout aborted: 1 converged sites kept, 2 nodes restored, 0 nodes did not confirm the restore"
	assert.Contains(t, res.Stdout, "reason: "+orchestrator.ReasonAborted+": "+kept+"\n")
	assert.EqualError(t, res.Err, "rollout "+id+" aborted: "+kept)
	assertDesired(t, srv, canary.ID, 2, after[canary.ID])
	assertDesired(t, srv, second.ID, 3, before[second.ID])
	assertLabSecret(t, returned, second.ID, before[second.ID])

	// Aborting again changes nothing; --output json prints the record.
	r = verb(t, srv, "abort", id, "--output", "json")
	assert.Equal(t, 1, r.Code(), r.All())
	doc := jsonRecord(t, r.Stdout)
	assert.Equal(t, id, doc.ID)
	assert.Equal(t, "aborted", doc.Phase)
	assert.Equal(t, map[string]string{canary.ID: "converged", second.ID: "cancelled"}, doc.outcomes())
}

// TestRolloutVerbsRollback rolls back a succeeded rollout: rollback (no id: the
// last rollout) re-publishes every node's previous intent as a new revision,
// waits for the agents, and exits 1 with the rollout rolled back; the desired
// states then hold the first rollout's intents and the lab hosts run them.
func TestRolloutVerbsRollback(t *testing.T) {
	sites := labfleet.Sites("verbs", 58, 2)
	srv, fleet := startCommandFleet(t, sites, "")
	before := newSecrets(sites)
	fleetFile := writeFleetFile(t, sites, before)
	r := run(t, "", "rollout", "start", fleetFile, "--nats-url", srv.URL, "--canary", "1", "--wave-size", "1")
	require.Equal(t, 0, r.Code(), r.All())
	first := desiredStates(t, srv)
	require.Len(t, first, 4)

	after := newSecrets(sites)
	writeFleetFile(t, sites, after, fleetFile)
	r = run(t, "", "rollout", "start", fleetFile, "--nats-url", srv.URL, "--canary", "1", "--wave-size", "1")
	require.Equal(t, 0, r.Code(), r.All())
	id := startedID(t, r)
	for _, s := range sites {
		assertDesired(t, srv, s.ID, 2, after[s.ID])
	}

	r = verb(t, srv, "rollback", "")
	assert.Equal(t, 1, r.Code(), "README: exit 1 when the rollout was rolled back: %s", r.All())
	assert.True(t, strings.HasPrefix(r.Stdout, "rollout "+id+": rolling_back\n"), r.Stdout)
	for _, s := range sites {
		assert.Regexp(t, `rollback `+s.ID+` +restored: pbx r3 converged; oml r3 converged`, r.Stdout)
	}
	assert.Regexp(t, `│ verbs-2 │ 2 +│ converged │ pbx +│ 3 \(restored 1\) +│ converged │`, r.Stdout)
	assert.Contains(t, r.Stdout, "rollout "+id+" rolled_back: 2 sites, 2 converged, 0 failed, 0 unreachable, 0 skipped, 4 restored, 0 restore failed\n")
	assert.Contains(t, r.Stdout, "reason: "+orchestrator.ReasonRolledBack+": rolled back: 4 nodes run their previous intent again\n")
	assert.EqualError(t, r.Err, "rollout "+id+" rolled_back: rolled back: 4 nodes run their previous intent again")

	// Each node's desired state is the first rollout's intent again, as a new revision.
	restored := desiredStates(t, srv)
	require.Len(t, restored, 4)
	for node, d := range restored {
		assert.Equal(t, uint64(3), d.Revision, node)
		assert.Equal(t, id, d.Rollout, node)
		assert.Equal(t, first[node].Trunk, d.Trunk, node)
		assert.Equal(t, first[node].PlanHash, d.PlanHash, node)
	}
	for _, s := range sites {
		assertLabSecret(t, fleet, s.ID, before[s.ID])
	}

	// Rolling back again changes nothing; --output json prints the record.
	r = verb(t, srv, "rollback", id, "--output", "json")
	assert.Equal(t, 1, r.Code(), r.All())
	doc := jsonRecord(t, r.Stdout)
	assert.Equal(t, id, doc.ID)
	assert.Equal(t, "rolled_back", doc.Phase)
	assert.Equal(t, restored, desiredStates(t, srv), "nothing was put again")
	for _, s := range after {
		assert.NotContains(t, r.All(), s)
	}
}

// TestRolloutVerbsErrors: every verb exits 1 with a message that says what is
// wrong when there has been no rollout, when the id is unknown (naming it), and
// when no orchestrator answers; pause, resume and abort of a finished rollout
// name it and its phase; without an id the verbs act on the last rollout.
func TestRolloutVerbsErrors(t *testing.T) {
	sites := labfleet.Sites("verbs", 58, 2)
	srv, _ := startCommandFleet(t, sites, "")

	const unknown = "20200101-000000-0badid"
	for _, v := range rolloutVerbs {
		t.Run(v+"/no rollout yet", func(t *testing.T) {
			r := verb(t, srv, v, "")
			assert.Equal(t, 1, r.Code(), r.All())
			assert.Empty(t, r.Stdout)
			assert.ErrorContains(t, r.Err, "current rollout: rollout not found: there has been none")
		})
		t.Run(v+"/unknown id", func(t *testing.T) {
			r := verb(t, srv, v, unknown)
			assert.Equal(t, 1, r.Code(), r.All())
			assert.Empty(t, r.Stdout)
			assert.ErrorContains(t, r.Err, `load rollout "`+unknown+`": rollout not found`)
		})
	}

	fleetFile := writeFleetFile(t, sites, newSecrets(sites))
	r := run(t, "", "rollout", "start", fleetFile, "--nats-url", srv.URL, "--canary", "0", "--wave-size", "2")
	require.Equal(t, 0, r.Code(), r.All())
	id := startedID(t, r)

	for _, tc := range []struct{ verb, word string }{
		{events.RolloutPause, "paused"},
		{events.RolloutResume, "resumed"},
		{events.RolloutAbort, "aborted"},
	} {
		t.Run(tc.verb+"/finished rollout", func(t *testing.T) {
			for _, arg := range []string{id, ""} { // by id, and the last rollout without one
				r := verb(t, srv, tc.verb, arg)
				assert.Equal(t, 1, r.Code(), r.All())
				assert.Empty(t, r.Stdout)
				assert.EqualError(t, r.Err, tc.verb+" (409): "+tc.verb+" rollout: operation not allowed in this phase: rollout "+
					id+" is succeeded and cannot be "+tc.word)
			}
		})
	}
	assert.Equal(t, orchestrator.PhaseSucceeded, readRollout(t, srv, id).Phase, "the refused verbs changed nothing")

	r = verb(t, srv, "watch", "")
	assert.Equal(t, 0, r.Code(), r.All())
	assert.Contains(t, r.Stdout, "rollout "+id+" succeeded: 2 sites, 2 converged, 0 failed, 0 unreachable, 0 skipped\n")

	bare := natstest.Start(t) // NATS with the buckets, but no orchestrator
	for _, v := range rolloutVerbs {
		t.Run(v+"/no control plane", func(t *testing.T) {
			subject := events.RolloutSubject(v)
			if v == "watch" {
				subject = events.RolloutSubject(events.RolloutStatus)
			}
			r := run(t, "", v, id, "--nats-url", bare.URL)
			assert.Equal(t, 1, r.Code(), r.All())
			want := "no orchestrator answers on " + subject + ": start the control plane with `pbxfleet serve`"
			if v == "watch" {
				want = "watch: " + want
			}
			assert.EqualError(t, r.Err, want)
		})
	}
}

// TestRolloutVerbsHelp: each verb's --help shows its usage with the optional
// id and what it does without one, and exits 0.
func TestRolloutVerbsHelp(t *testing.T) {
	for _, tc := range []struct{ verb, says string }{
		{"watch", "watch follows a rollout started by anyone"},
		{"status", "status prints the rollout's record as it is now and returns."},
		{"pause", "pause stops starting new sites; sites in flight finish and are counted."},
		{"resume", "resume continues from the persisted state; sites already put are not put again."},
		{"abort", "abort stops the rollout; sites that converged keep the new revision."},
		{"rollback", "rollback re-publishes each touched node's previous intent as a new revision"},
	} {
		t.Run(tc.verb, func(t *testing.T) {
			r := run(t, "", "rollout", tc.verb, "--help")
			require.Equal(t, 0, r.Code(), r.All())
			assert.Contains(t, r.Stdout, "pbxfleet rollout "+tc.verb+" [ROLLOUT-ID] [flags]")
			assert.Contains(t, r.Stdout, tc.says)
			assert.Contains(t, r.Stdout, "Without an id it acts on the current rollout (the active one, else the last).")
			assert.Regexp(t, `-o, --output string +text or json`, r.Stdout)
			assert.Contains(t, r.Stdout, "--nats-url")
		})
	}
}

// verb runs `pbxfleet rollout <name> [id] --nats-url <srv> [extra...]`.
func verb(t *testing.T, srv *natstest.Server, name, id string, extra ...string) result {
	t.Helper()
	args := []string{"rollout", name}
	if id != "" {
		args = append(args, id)
	}
	return run(t, "", append(append(args, "--nats-url", srv.URL), extra...)...)
}

func newSecrets(sites []labfleet.Site) map[string]string {
	out := map[string]string{}
	for _, s := range sites {
		out[s.ID] = labfleet.NewSecret()
	}
	return out
}

// writeFleetFile writes the fleet file of sites with secrets, to path when
// given, else to a new temp file, and returns its path.
func writeFleetFile(t *testing.T, sites []labfleet.Site, secrets map[string]string, path ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fleet.yaml")
	if len(path) > 0 {
		p = path[0]
	}
	require.NoError(t, os.WriteFile(p, labfleet.FleetYAML(sites, secrets), 0o600))
	return p
}

var startedLine = regexp.MustCompile(`(?m)^rollout (\S+) started: \d+ sites, plan [0-9a-f]+$`)

// startedID returns the rollout id from rollout's first line.
func startedID(t *testing.T, r result) string {
	t.Helper()
	m := startedLine.FindStringSubmatch(r.Stdout)
	require.NotNil(t, m, "no started line in %q", r.Stdout)
	return m[1]
}

// readRollout reads a rollout's record from the pbxfleet_rollouts bucket, where
// the orchestrator keeps it (README: `nats kv get pbxfleet_rollouts rollout.<id>`).
func readRollout(t *testing.T, srv *natstest.Server, id string) orchestrator.Rollout {
	t.Helper()
	r, err := tryReadRollout(srv, id)
	require.NoError(t, err)
	return r
}

func tryReadRollout(srv *natstest.Server, id string) (orchestrator.Rollout, error) {
	return orchestrator.New(srv.JS, nil).Get(context.Background(), id)
}

// awaitRollout polls the rollout's record until cond holds and returns it; it
// fails the test after 20s.
func awaitRollout(t *testing.T, srv *natstest.Server, id, what string, cond func(orchestrator.Rollout) bool) orchestrator.Rollout {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		r, err := tryReadRollout(srv, id)
		if err == nil && cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout %s: waited 20s for: %s; last state: %v (err %v)", id, what, r, err)
		}
		<-tick.C
	}
}

// siteOf returns a site of the rollout (the zero state when it has none).
func siteOf(r orchestrator.Rollout, site string) orchestrator.SiteState {
	s, _ := r.Site(site)
	return s
}

// allPut reports whether every node of the site has its desired state put.
func allPut(s orchestrator.SiteState) bool {
	for _, n := range s.Nodes {
		if !n.Put {
			return false
		}
	}
	return len(s.Nodes) > 0
}

// desiredStates reads every node's desired state from the pbxfleet_desired bucket.
func desiredStates(t *testing.T, srv *natstest.Server) map[string]events.Desired {
	t.Helper()
	out := map[string]events.Desired{}
	for k, v := range desiredRaw(t, srv) {
		d, err := events.DecodeDesired(v, nil, k)
		require.NoError(t, err)
		out[k] = d
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// assertDesired checks that both nodes of site hold revision rev with secret.
func assertDesired(t *testing.T, srv *natstest.Server, site string, rev uint64, secret string) {
	t.Helper()
	all := desiredStates(t, srv)
	for _, role := range []string{events.RolePBX, events.RoleOML} {
		node := events.NodeID(site, role)
		d, ok := all[node]
		if assert.True(t, ok, "no desired state for %s", node) {
			assert.Equal(t, rev, d.Revision, node)
			assert.True(t, d.Trunk.Secret == secret, "%s holds another secret than expected", node)
		}
	}
}

// assertLabSecret checks that both lab hosts of site run configuration files
// written with secret (the agents applied that desired state).
func assertLabSecret(t *testing.T, fleet *labfleet.Fleet, site, secret string) {
	t.Helper()
	for role, file := range map[string]string{events.RolePBX: "pbxfleet_sip.conf", events.RoleOML: "pbxfleet_pjsip_wizard.conf"} {
		node := events.NodeID(site, role)
		b, err := os.ReadFile(filepath.Join(fleet.ConfigDir(node), file))
		require.NoError(t, err)
		assert.True(t, strings.Contains(string(b), secret), "%s's %s is not written with the expected secret", node, file)
	}
}

// verbRecord is the part of a verb's --output json document the tests read.
type verbRecord struct {
	ID    string `json:"id"`
	Phase string `json:"phase"`
	Sites []struct {
		Site    string `json:"site"`
		Outcome string `json:"outcome"`
	} `json:"sites"`
}

func (d verbRecord) outcomes() map[string]string {
	out := map[string]string{}
	for _, s := range d.Sites {
		out[s.Site] = s.Outcome
	}
	return out
}

// jsonRecord decodes the rollout record a verb printed with --output json:
// stdout must hold that one document and nothing else (progress goes to stderr).
func jsonRecord(t *testing.T, stdout string) verbRecord {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	var d verbRecord
	require.NoError(t, dec.Decode(&d), "stdout is one JSON document: %q", stdout)
	rest, err := io.ReadAll(dec.Buffered())
	require.NoError(t, err)
	require.Empty(t, strings.TrimSpace(string(rest)), "nothing after the JSON document")
	require.False(t, dec.More(), "nothing after the JSON document: %q", stdout)
	return d
}

// TestRolloutVerbsRejectABadOutput: an --output other than text or json exits
// 2 naming the flag, before anything is asked of NATS.
func TestRolloutVerbsRejectABadOutput(t *testing.T) {
	for _, v := range rolloutVerbs {
		t.Run(v, func(t *testing.T) {
			r := run(t, "", v, "--output", "yaml", "--nats-url", "nats://127.0.0.1:1")
			assert.Equal(t, 2, r.Code(), r.All())
			assert.EqualError(t, r.Err, `--output "yaml": want text or json`)
		})
	}
}

// TestRolloutOldSpellings: the previous release's spellings (pbxfleet
// rollout FLEET.yaml, pbxfleet pause, ...) still work, each with a notice on
// stderr naming the new one, and stay out of the help.
func TestRolloutOldSpellings(t *testing.T) {
	sites := labfleet.Sites("old", 65, 1)
	srv, _ := startCommandFleet(t, sites, "")
	secrets := newSecrets(sites)
	fleetFile := writeFleetFile(t, sites, secrets)

	r := run(t, "", "rollout", fleetFile, "--nats-url", srv.URL, "--output", "json")
	require.Equal(t, 0, r.Code(), r.All())
	assert.Contains(t, r.Stderr, "notice: `pbxfleet rollout FLEET.yaml` is now `pbxfleet rollout start FLEET.yaml`")
	var rec orchestrator.Rollout
	require.NoError(t, json.Unmarshal([]byte(r.Stdout), &rec), "stdout holds only the record")
	assert.Equal(t, orchestrator.PhaseSucceeded, rec.Phase)

	r = run(t, "", "pause", "--nats-url", srv.URL)
	assert.Contains(t, r.Stderr, "notice: `pbxfleet pause` is now `pbxfleet rollout pause`")

	r = run(t, "", "rollout", "status", rec.ID, "--nats-url", srv.URL, "--output", "json")
	require.Equal(t, 0, r.Code(), r.All())
	var now orchestrator.Rollout
	require.NoError(t, json.Unmarshal([]byte(r.Stdout), &now))
	assert.Equal(t, rec.ID, now.ID)

	help := run(t, "", "--help")
	for _, v := range rolloutVerbs {
		assert.NotRegexp(t, `(?m)^  `+v+` `, help.Stdout, "%s is under rollout only", v)
	}
}
