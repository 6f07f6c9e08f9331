package node

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
)

const testSecret = "S3cure-Trunk-Secret-1"

// seedTrunkFor is seedTrunk for another site.
func seedTrunkFor(site string) events.Trunk {
	t := seedTrunk()
	t.Site = site
	return t
}

// seedTrunk is the seed's LAN block with the fixtures' addresses (PBX
// 127.0.0.2, OML 127.0.0.3) and a strong secret.
func seedTrunk() events.Trunk {
	return events.Trunk{
		Site: "bsas-1", Scenario: "lan",
		PBXAddress: "127.0.0.2", PBXPort: 5060, OMLAddress: "127.0.0.3",
		OMLTransport: "trunk-transport", OMLPort: 5161,
		PBXTrunkName: "omnileads", OMLTrunkName: "issabel", PBXUser: "issabel", OMLUser: "omnileads",
		Secret: testSecret, PBXCodecs: []string{"alaw"}, OMLCodecs: []string{"alaw", "ulaw"}, QualifyFrequency: 60,
		DIDs:         []events.DID{{Number: "098098", Extension: "5000"}},
		Agents:       []events.Agent{{ID: "1", SIPNumber: "1006", Name: "Adrian Belew"}, {ID: "2", SIPNumber: "1007"}},
		AgentRouting: "pattern", AgentPattern: "_1XXXX.", ProbeNumber: "99999",
	}
}

type harness struct {
	t        *testing.T
	srv      *natstest.Server
	role     string
	node     string
	confDir  string
	stateDir string
	fakeDir  string
	results  jetstream.Consumer
	verify   time.Duration
	// statusInterval overrides the status refresh period (default 300ms).
	statusInterval time.Duration
	// probeWait overrides the wait for a probe order (default 20s).
	probeWait time.Duration
	// acceptWeak is the agent's accept_weak_secrets.
	acceptWeak bool
}

func newHarness(t *testing.T, srv *natstest.Server, role string) *harness {
	t.Helper()
	return newHarnessFor(t, srv, "bsas-1", role)
}

// newHarnessFor is newHarness for node <site>.<role>, so several agents can
// share one server.
func newHarnessFor(t *testing.T, srv *natstest.Server, site, role string) *harness {
	t.Helper()
	root := t.TempDir()
	h := &harness{t: t, srv: srv, role: role, node: site + "." + role, verify: 20 * time.Second,
		confDir: filepath.Join(root, "etc"), stateDir: filepath.Join(root, "state"), fakeDir: filepath.Join(root, "fake")}
	for _, d := range []string{h.confDir, h.fakeDir} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	// Stock files the includes go into, as on a real host.
	parent := "sip_custom.conf"
	if role == events.RoleOML {
		parent = "oml_pjsip_wizard_custom.conf"
	}
	require.NoError(t, os.WriteFile(filepath.Join(h.confDir, parent), []byte("; stock file\n"), 0o640))
	ctx := context.Background()
	c, err := srv.JS.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.ResultSubject(site, role)}})
	require.NoError(t, err)
	h.results = c
	return h
}

func (h *harness) config() Config {
	return Config{
		Node: h.node, ConfigDir: h.confDir, StateDir: h.stateDir,
		Command: fakeCommand(h.fakeDir, h.role, h.confDir),
		// Generous for a loaded 2-core CI machine; tests that expect a failure
		// shorten Verify.
		Deadlines: Deadlines{Command: 10 * time.Second, Verify: h.verify, Probe: 5 * time.Second,
			ProbeWait: cmp.Or(h.probeWait, 20*time.Second)},
		StatusInterval: cmp.Or(h.statusInterval, 300*time.Millisecond), PollInterval: 50 * time.Millisecond,
		AcceptWeakSecrets: h.acceptWeak,
	}
}

func (h *harness) setMode(mode string) {
	require.NoError(h.t, os.WriteFile(filepath.Join(h.fakeDir, "mode"), []byte(mode), 0o600))
}

func (h *harness) side() Side {
	s, err := SideFor(h.role)
	require.NoError(h.t, err)
	return s
}

// start runs an agent until the test ends (or until the returned stop is called).
func (h *harness) start(opts ...Option) (stop func()) {
	h.t.Helper()
	nc, err := nats.Connect(h.srv.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(h.t, err)
	a, err := New(h.config(), h.side(), nil, nc, opts...)
	require.NoError(h.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			require.NoError(h.t, err)
		case <-time.After(15 * time.Second):
			h.t.Error("agent did not stop within 15s")
		}
		nc.Close()
	}
	h.t.Cleanup(stop)
	return stop
}

func (h *harness) put(rev uint64, tr events.Trunk) {
	h.t.Helper()
	data, _, err := events.Encode(events.SourceOrchestrator, events.Desired{Node: h.node, Revision: rev, Trunk: tr})
	require.NoError(h.t, err)
	h.putRaw(data)
}

func (h *harness) putRaw(data []byte) {
	h.t.Helper()
	kv, err := h.srv.JS.KeyValue(context.Background(), events.BucketDesired)
	require.NoError(h.t, err)
	_, err = kv.Put(context.Background(), h.node, data)
	require.NoError(h.t, err)
}

// nextResult waits for the next result of this node on the stream.
func (h *harness) nextResult() events.Result {
	h.t.Helper()
	msg, err := h.results.Next(jetstream.FetchMaxWait(90 * time.Second))
	require.NoError(h.t, err, "no result within 90s")
	r, err := events.DecodeResult(msg.Data(), msg.Headers(), msg.Subject())
	require.NoError(h.t, err)
	return r
}

func (h *harness) read(name string) string {
	b, err := os.ReadFile(filepath.Join(h.confDir, name))
	require.NoError(h.t, err)
	return string(b)
}

func managedName(role string) string {
	if role == events.RolePBX {
		return "pbxfleet_sip.conf"
	}
	return "pbxfleet_pjsip_wizard.conf"
}

func checkByName(r events.Result, name string) (events.Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return events.Check{}, false
}

func TestAgentConverges(t *testing.T) {
	srv := natstest.Start(t)
	for _, role := range []string{events.RolePBX, events.RoleOML} {
		t.Run(role, func(t *testing.T) {
			h := newHarness(t, srv, role)
			h.start()
			h.put(1, seedTrunk())
			r := h.nextResult()
			require.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
			assert.EqualValues(t, 1, r.Revision)
			assert.True(t, r.Trunk.Reachable)
			require.NotNil(t, r.Probe)
			assert.Equal(t, VerdictTrunkWorks, r.Probe.Verdict)
			assert.Equal(t, 1, r.Probe.HangupCause)
			for _, name := range []string{CheckReload, CheckObject, CheckQualify, CheckDialplan, CheckProbe} {
				c, ok := checkByName(r, name)
				require.True(t, ok, "check %s missing", name)
				assert.True(t, c.Passed, "%s: %s", name, c.Detail)
			}
			assert.Contains(t, h.read(managedName(role)), "revision 1")
			parent := map[string]string{events.RolePBX: "sip_custom.conf", events.RoleOML: "oml_pjsip_wizard_custom.conf"}[role]
			inc := "#include " + managedName(role)
			assert.Equal(t, 1, strings.Count(h.read(parent), inc))
			// The secret never leaves the host in a result.
			data, _, err := events.Encode(events.NodeSource("bsas-1", role), r)
			require.NoError(t, err)
			assert.NotContains(t, string(data), testSecret)

			// A second revision keeps the include line single.
			tr := seedTrunk()
			tr.DIDs = append(tr.DIDs, events.DID{Number: "098099"})
			h.put(2, tr)
			r = h.nextResult()
			require.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
			assert.Equal(t, 1, strings.Count(h.read(parent), inc))
		})
	}
}

// TestStatusIsPutBeforeTheResult: whoever sees a node's result finds the status
// it implies. The periodic refresh is an hour away, so only the write that ends
// an apply (converged or rolled back) can make the status say so.
func TestStatusIsPutBeforeTheResult(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.statusInterval = time.Hour
	h.verify = 2 * time.Second
	h.start()
	status := func() events.Status {
		t.Helper()
		kv, err := srv.JS.KeyValue(context.Background(), events.BucketStatus)
		require.NoError(t, err)
		e, err := kv.Get(context.Background(), h.node)
		require.NoError(t, err)
		st, err := events.DecodeStatus(e.Value(), nil, h.node)
		require.NoError(t, err)
		return st
	}

	h.put(1, seedTrunk())
	r := h.nextResult()
	st := status() // read at once: no wait, no retry
	require.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
	assert.EqualValues(t, 1, st.AppliedRevision, "the status still names the revision before the apply")
	assert.Equal(t, events.OutcomeConverged, st.Outcome)
	assert.True(t, st.Healthy, st.Detail)

	h.setMode("unreachable")
	h.put(2, seedTrunk())
	r = h.nextResult()
	st = status()
	require.Equal(t, events.OutcomeRolledBack, r.Outcome, r.Reason)
	assert.EqualValues(t, 1, st.AppliedRevision)
	assert.Equal(t, events.OutcomeRolledBack, st.Outcome, "the status still shows the apply before")
}

func TestAgentRollsBackWhenFarSideUnreachable(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.verify = 8 * time.Second
	h.start()
	h.put(1, seedTrunk())
	require.Equal(t, events.OutcomeConverged, h.nextResult().Outcome)
	before := h.read("pbxfleet_sip.conf")
	beforeDP := h.read("pbxfleet_extensions.conf")

	h.setMode("unreachable")
	tr := seedTrunk()
	tr.OMLPort = 5199
	h.put(2, tr)
	r := h.nextResult()
	require.Equal(t, events.OutcomeRolledBack, r.Outcome)
	assert.EqualValues(t, 1, r.RestoredRevision)
	assert.Contains(t, r.Reason, "qualify")
	assert.Contains(t, r.Reason, "UNREACHABLE")
	q, _ := checkByName(r, CheckQualify)
	assert.Contains(t, strings.Join(q.Raw, "\n"), "UNREACHABLE", "the raw CLI line that proved it")
	assert.Equal(t, before, h.read("pbxfleet_sip.conf"), "old bytes restored")
	assert.Equal(t, beforeDP, h.read("pbxfleet_extensions.conf"))
}

func TestAgentProbeCatchesCredentialMismatchThatQualifyMisses(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.verify = 8 * time.Second
	h.start()
	h.setMode("badsecret")
	h.put(1, seedTrunk())
	r := h.nextResult()
	require.Equal(t, events.OutcomeRolledBack, r.Outcome)
	q, ok := checkByName(r, CheckQualify)
	require.True(t, ok)
	assert.True(t, q.Passed, "qualify says OK, as in the fixture")
	assert.Contains(t, strings.Join(q.Raw, "\n"), "OK (1 ms)")
	p, ok := checkByName(r, CheckProbe)
	require.True(t, ok)
	assert.False(t, p.Passed)
	require.NotNil(t, r.Probe)
	assert.Equal(t, "CONGESTION", r.Probe.DialStatus)
	assert.Equal(t, 21, r.Probe.HangupCause)
	assert.Equal(t, VerdictAuthOrFarTrunk, r.Probe.Verdict)
	assert.Contains(t, r.Reason, "probe")
	// Nothing was applied before: the managed file is back to an empty one.
	assert.NotContains(t, h.read("pbxfleet_sip.conf"), "[omnileads]")
}

var errKilled = errors.New("killed between write and reload")

func TestAgentKilledBetweenWriteAndReloadConvergesOnRestart(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	stop := h.start(WithHooks(Hooks{AfterWrite: func() error { return errKilled }}))
	h.put(1, seedTrunk())
	r := h.nextResult()
	require.Equal(t, events.OutcomeFailed, r.Outcome)
	stop()
	j, err := stateDir(h.stateDir).loadJournal()
	require.NoError(t, err)
	require.NotNil(t, j.InFlight, "the journal shows the interrupted apply")
	assert.EqualValues(t, 1, j.InFlight.Revision)

	h.start() // a new process on the same state dir
	r = h.nextResult()
	require.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
	assert.EqualValues(t, 1, r.Revision)
	j, err = stateDir(h.stateDir).loadJournal()
	require.NoError(t, err)
	assert.Nil(t, j.InFlight)
	assert.EqualValues(t, 1, j.Applied.Revision)
	entries, err := os.ReadDir(h.confDir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.Contains(e.Name(), ".pbxfleet-"), "no temp file left: %s", e.Name())
	}
}

func TestAgentRejectsHostileEventsAndKeepsServing(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RoleOML)
	h.start()
	h.put(3, seedTrunk())
	require.Equal(t, events.OutcomeConverged, h.nextResult().Outcome)
	good := h.read(managedName(events.RoleOML))

	otherTrunk := seedTrunk()
	otherTrunk.Site = "bsas-2"
	other, _, err := events.Encode(events.SourceOrchestrator, events.Desired{Node: "bsas-2.oml", Revision: 9, Trunk: otherTrunk})
	require.NoError(t, err)
	injected := seedTrunk()
	injected.OMLTrunkName = "issabel]\n[evil"
	injectedData, _, err := events.Encode(events.SourceOrchestrator, events.Desired{Node: h.node, Revision: 10, Trunk: injected})
	if err != nil {
		// events may refuse to encode it; hand-craft the same event then.
		injectedData = []byte(strings.Replace(string(other), `"issabel"`, `"issabel]\n[evil"`, 1))
	}
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"garbage", []byte("\x00\x01 not json"), "rejected"},
		{"wrong node", other, "bsas-2.oml"},
		{"oversized", []byte(`{"specversion":"1.0","data":"` + strings.Repeat("A", 63<<10) + `"}`), "rejected"},
		{"injected config", injectedData, "oml_trunk_name: unsafe value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.putRaw(tc.data)
			r := h.nextResult()
			assert.Equal(t, events.OutcomeRejected, r.Outcome)
			assert.Contains(t, r.Reason, tc.want)
			assert.Equal(t, good, h.read(managedName(events.RoleOML)), "nothing written")
		})
	}
	// A replayed old revision is refused with a reason.
	h.put(2, seedTrunk())
	r := h.nextResult()
	assert.Equal(t, events.OutcomeRejected, r.Outcome)
	assert.Contains(t, r.Reason, "stale revision 2")
	// And the agent still serves.
	tr := seedTrunk()
	tr.QualifyFrequency = 30
	h.put(11, tr)
	r = h.nextResult()
	require.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
	assert.Contains(t, h.read(managedName(events.RoleOML)), "aor/qualify_frequency=30")
}

func TestAgentReportsDrift(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.start()
	h.put(1, seedTrunk())
	require.Equal(t, events.OutcomeConverged, h.nextResult().Outcome)

	path := filepath.Join(h.confDir, "pbxfleet_sip.conf")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(b, []byte("nat=force_rport\n")...), 0o644))

	kv, err := srv.JS.KeyValue(context.Background(), events.BucketStatus)
	require.NoError(t, err)
	var st events.Status
	require.Eventually(t, func() bool {
		e, err := kv.Get(context.Background(), h.node)
		if err != nil {
			return false
		}
		st, err = events.DecodeStatus(e.Value(), nil, h.node)
		return err == nil && st.Drift
	}, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, []string{"pbxfleet_sip.conf"}, st.DriftFiles)
	assert.False(t, st.Healthy)
	assert.EqualValues(t, 1, st.AppliedRevision)
}

func TestAgentSurvivesNATSRestartMidApply(t *testing.T) {
	dir := t.TempDir()
	srv := natstest.StartIn(t, dir, -1)
	port := srv.Port()
	h := newHarness(t, srv, events.RolePBX)
	restarted := make(chan *natstest.Server, 1)
	h.start(WithHooks(Hooks{AfterWrite: func() error {
		// The server goes away while the agent reloads and verifies.
		srv.Shutdown()
		go func() { restarted <- natstest.StartIn(t, dir, port) }()
		return nil
	}}))
	h.put(1, seedTrunk())
	srv2 := <-restarted
	c, err := srv2.JS.OrderedConsumer(context.Background(), events.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.ResultSubject("bsas-1", events.RolePBX)}})
	require.NoError(t, err)
	msg, err := c.Next(jetstream.FetchMaxWait(20 * time.Second))
	require.NoError(t, err, "the result reached the stream after the restart")
	r, err := events.DecodeResult(msg.Data(), msg.Headers(), msg.Subject())
	require.NoError(t, err)
	assert.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
	assert.Eventually(t, func() bool {
		entries, _ := os.ReadDir(filepath.Join(h.stateDir, "outbox"))
		return len(entries) == 0
	}, 10*time.Second, 50*time.Millisecond, "outbox flushed once JetStream acknowledged")
}

func TestCheckAndStatusServices(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RoleOML)
	h.start()
	h.put(1, seedTrunk())
	require.Equal(t, events.OutcomeConverged, h.nextResult().Outcome)

	msg, err := srv.Conn.Request(events.CheckSubject("bsas-1", events.RoleOML), []byte(`{"probe":true}`), 10*time.Second)
	require.NoError(t, err)
	assert.Contains(t, string(msg.Data), `"passed":true`)
	assert.Contains(t, string(msg.Data), `"verdict":"trunk_works"`)
	msg, err = srv.Conn.Request(events.StatusSubject("bsas-1", events.RoleOML), nil, 10*time.Second)
	require.NoError(t, err)
	assert.Contains(t, string(msg.Data), `"applied_revision":1`)
	assert.NotContains(t, string(msg.Data), testSecret)
}

// TestCheckNeverUndoesAnApplyInFlight: `pbx-node check` runs in its own process
// beside the agent; seeing the journal's in-flight entry it must report, not
// restore the previous files under the running agent's feet.
func TestCheckNeverUndoesAnApplyInFlight(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	stop := h.start(WithHooks(Hooks{AfterWrite: func() error { return errKilled }}))
	h.put(1, seedTrunk())
	require.Equal(t, events.OutcomeFailed, h.nextResult().Outcome)
	stop()
	written := h.read("pbxfleet_sip.conf")

	checker, err := New(h.config(), h.side(), nil, nil)
	require.NoError(t, err)
	rep, err := checker.Check(context.Background(), true)
	require.NoError(t, err)
	assert.False(t, rep.Passed)
	assert.Contains(t, rep.Reason, "revision 1 is being applied")
	assert.Equal(t, written, h.read("pbxfleet_sip.conf"), "check changed nothing")
	j, err := stateDir(h.stateDir).loadJournal()
	require.NoError(t, err)
	assert.NotNil(t, j.InFlight, "the journal is left for the agent to finish")
}

// TestRejectedRevisionDoesNotRaiseTheFloor: a refused desired state at a huge
// revision must not make the next valid revision look stale.
func TestRejectedRevisionDoesNotRaiseTheFloor(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.start()
	bad := seedTrunk()
	bad.PBXTrunkName, bad.OMLUser = "omni-leads", "omni-leads" // unsafe: a hyphen
	h.put(events.MaxRevision, bad)
	r := h.nextResult()
	require.Equal(t, events.OutcomeRejected, r.Outcome)
	assert.Contains(t, r.Reason, "unsafe value")
	// Revisions above the highest are refused, however valid the rest: a node
	// that took 2^63-1 would refuse everything after it.
	for _, huge := range []string{"9223372036854775807", "18446744073709551615"} {
		data, _, err := events.Encode(events.SourceOrchestrator, events.Desired{Node: h.node, Revision: 7, Trunk: seedTrunk()})
		require.NoError(t, err)
		h.putRaw(bytes.Replace(data, []byte(`"revision":7`), []byte(`"revision":`+huge), 1))
		r = h.nextResult()
		require.Equal(t, events.OutcomeRejected, r.Outcome, huge)
		assert.Contains(t, r.Reason, "above", huge)
	}
	first, _, err := events.Encode(events.SourceOrchestrator, events.Desired{Node: h.node, Revision: 2, Rollout: "r-1", Trunk: seedTrunk()})
	require.NoError(t, err)
	h.putRaw(first)
	r = h.nextResult()
	assert.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
	assert.EqualValues(t, 2, r.Revision)

	// The same revision from another rollout is not the one handled: the
	// numbering started again (a lost store). The node says what it handled.
	data, _, err := events.Encode(events.SourceOrchestrator, events.Desired{Node: h.node, Revision: 2, Rollout: "after-a-lost-store", Trunk: seedTrunk()})
	require.NoError(t, err)
	h.putRaw(data)
	r = h.nextResult()
	require.Equal(t, events.OutcomeRejected, r.Outcome)
	assert.EqualValues(t, 2, r.HandledRevision)
}

// TestApplyCurrentOnce backs `--once`: apply the current desired state, publish
// the result, and find nothing new the second time.
func TestApplyCurrentOnce(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RoleOML)
	h.put(1, seedTrunk())
	nc, err := nats.Connect(srv.URL)
	require.NoError(t, err)
	defer nc.Close()
	a, err := New(h.config(), h.side(), nil, nc)
	require.NoError(t, err)
	res, ok, err := a.ApplyCurrent(context.Background())
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, events.OutcomeConverged, res.Outcome, res.Reason)
	assert.Equal(t, res.Revision, h.nextResult().Revision, "the result is on the stream")
	_, ok, err = a.ApplyCurrent(context.Background())
	require.NoError(t, err)
	assert.False(t, ok, "nothing new to apply")
}

// TestAgentEnforcesTheSecretPolicy: the agent refuses, before writing
// anything, a desired state whose secret the policy of plan and the
// orchestrator refuses (a hand put, an older orchestrator): the manual's
// omnileads, 3 characters, an nkey seed; with accept_weak_secrets (a lab) it
// writes a weak one, never a key.
func TestAgentEnforcesTheSecretPolicy(t *testing.T) {
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	tests := []struct {
		name, secret string
		acceptWeak   bool
		want         string // the reason's phrase; "" converges
	}{
		{"the manual's omnileads", "omnileads", false, "weak secret: a well-known password"},
		{"three characters", "x7Q", false, "weak secret: shorter than 12"},
		{"an nkey seed", string(seed), false, "key material"},
		{"an nkey seed in a lab", string(seed), true, "key material"},
		{"omnileads in a lab", "omnileads", true, ""},
	}
	srv := natstest.Start(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := fmt.Sprintf("policy-%d", i)
			h := newHarnessFor(t, srv, site, events.RolePBX)
			h.acceptWeak = tt.acceptWeak
			h.start()
			tr := seedTrunkFor(site)
			tr.Secret = tt.secret
			h.put(1, tr)
			r := h.nextResult()
			if tt.want == "" {
				require.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
				return
			}
			require.Equal(t, events.OutcomeRejected, r.Outcome, r.Reason)
			assert.Contains(t, r.Reason, tt.want)
			assert.NotContains(t, r.Reason, tt.secret)
			_, err := os.Stat(filepath.Join(h.confDir, managedName(events.RolePBX)))
			assert.True(t, os.IsNotExist(err), "nothing written")
		})
	}
}
