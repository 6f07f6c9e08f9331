package node

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/bus"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/internal/syncbuf"
)

// putOnOrder puts revision rev of tr as a rollout would: the probe waits for the
// orchestrator's order.
func (h *harness) putOnOrder(rev uint64, tr events.Trunk) {
	h.t.Helper()
	data, _, err := events.Encode(events.SourceOrchestrator, events.Desired{
		Node: h.node, Revision: rev, Rollout: "r-test", Trunk: tr, Probe: events.ProbeOnOrder})
	require.NoError(h.t, err)
	h.putRaw(data)
}

// order sends a probe order to the node's endpoint and returns the answer.
func (h *harness) order(o events.ProbeOrder) (events.ProbeAnswer, *nats.Msg) {
	h.t.Helper()
	body, err := json.Marshal(o)
	require.NoError(h.t, err)
	site, role, _ := events.ParseNodeID(h.node)
	msg, err := h.srv.Conn.Request(events.ProbeSubject(site, role), body, 10*time.Second)
	require.NoError(h.t, err)
	var ans events.ProbeAnswer
	_ = json.Unmarshal(msg.Data, &ans)
	return ans, msg
}

// commands returns the CLI commands the fake asterisk was asked, in order.
func (h *harness) commands() []string {
	b, _ := os.ReadFile(filepath.Join(h.fakeDir, "commands"))
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// TestProbeWaitsForTheOrder: a desired state put by a rollout is applied and
// checked, reported awaiting_probe, and probed only when the orchestrator's order
// for that revision comes; the endpoint refuses what is not such an order.
func TestProbeWaitsForTheOrder(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.start()
	h.putOnOrder(1, seedTrunk())
	r := h.nextResult()
	require.Equal(t, events.OutcomeAwaitingProbe, r.Outcome, r.Reason)
	_, ok := checkByName(r, CheckDialplan)
	assert.True(t, ok, "the checks ran before the wait")
	assert.Zero(t, countPrefix(h.commands(), "channel originate"), "no call before the order")

	site, role, _ := events.ParseNodeID(h.node)
	for _, body := range []string{"", `{"stream":"PBXFLEET_RESULTS","seq":4}`, `{}`} {
		msg, err := srv.Conn.Request(events.ProbeSubject(site, role), []byte(body), 10*time.Second)
		require.NoError(t, err)
		assert.Equal(t, "400", msg.Header.Get("Nats-Service-Error-Code"), "body %q", body)
	}
	ans, _ := h.order(events.ProbeOrder{Rollout: "r-test", Revision: 2, Action: events.ProbeActionProbe})
	assert.False(t, ans.Accepted, "an order for another revision is not taken: %s", ans.Detail)
	assert.Zero(t, countPrefix(h.commands(), "channel originate"))

	ans, _ = h.order(events.ProbeOrder{Rollout: "r-test", Revision: 1, Action: events.ProbeActionProbe})
	assert.True(t, ans.Accepted, ans.Detail)
	r = h.nextResult()
	require.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
	assert.Equal(t, 1, countPrefix(h.commands(), "channel originate"), "one probe call")
	ans, _ = h.order(events.ProbeOrder{Rollout: "r-test", Revision: 1, Action: events.ProbeActionProbe})
	assert.True(t, ans.Done, "an order sent again after the end: %s", ans.Detail)
	assert.Equal(t, 1, countPrefix(h.commands(), "channel originate"), "still one")
}

// TestProbeOrderEndsTheWaitOtherwise: a cancel, a newer revision on the key, or
// no order in time all end the wait with a rollback and no call.
func TestProbeOrderEndsTheWaitOtherwise(t *testing.T) {
	srv := natstest.Start(t)
	t.Run("cancelled", func(t *testing.T) {
		h := newHarnessFor(t, srv, "cancel-1", events.RolePBX)
		h.start()
		h.putOnOrder(1, seedTrunkFor("cancel-1"))
		require.Equal(t, events.OutcomeAwaitingProbe, h.nextResult().Outcome)
		ans, _ := h.order(events.ProbeOrder{Rollout: "r-test", Revision: 1, Action: events.ProbeActionCancel, Reason: "cancel-1.oml rolled_back"})
		require.True(t, ans.Accepted, ans.Detail)
		r := h.nextResult()
		require.Equal(t, events.OutcomeRolledBack, r.Outcome)
		assert.Contains(t, r.Reason, "cancel-1.oml rolled_back")
		assert.Zero(t, countPrefix(h.commands(), "channel originate"))
	})
	t.Run("no order in time", func(t *testing.T) {
		h := newHarnessFor(t, srv, "late-1", events.RolePBX)
		h.probeWait = 500 * time.Millisecond
		h.start()
		h.putOnOrder(1, seedTrunkFor("late-1"))
		require.Equal(t, events.OutcomeAwaitingProbe, h.nextResult().Outcome)
		r := h.nextResult()
		require.Equal(t, events.OutcomeRolledBack, r.Outcome)
		assert.Contains(t, r.Reason, "no probe order within 500ms")
		assert.Zero(t, countPrefix(h.commands(), "channel originate"))
	})
	t.Run("superseded", func(t *testing.T) {
		h := newHarnessFor(t, srv, "newer-1", events.RolePBX)
		h.start()
		h.putOnOrder(1, seedTrunkFor("newer-1"))
		require.Equal(t, events.OutcomeAwaitingProbe, h.nextResult().Outcome)
		h.put(2, seedTrunkFor("newer-1")) // probes at once
		r := h.nextResult()
		require.Equal(t, events.OutcomeRolledBack, r.Outcome)
		assert.EqualValues(t, 1, r.Revision)
		assert.Contains(t, r.Reason, "superseded")
		r = h.nextResult()
		require.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
		assert.EqualValues(t, 2, r.Revision)
		assert.Equal(t, 1, countPrefix(h.commands(), "channel originate"), "only revision 2 was probed")
	})
}

// TestStoppedWhileAwaitingTheOrder: stopping the agent while it waits for the
// order leaves the apply in flight; the next start keeps the files and applies
// the revision again (one reload, not an undo and a redo), which waits for the
// order again.
func TestStoppedWhileAwaitingTheOrder(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RoleOML)
	stop := h.start()
	h.putOnOrder(1, seedTrunk())
	require.Equal(t, events.OutcomeAwaitingProbe, h.nextResult().Outcome)
	stop()
	j, err := stateDir(h.stateDir).loadJournal()
	require.NoError(t, err)
	require.NotNil(t, j.InFlight, "the apply is still in flight")
	assert.Equal(t, phaseAwaitingProbe, j.InFlight.Phase)
	assert.Zero(t, j.LastSeen, "the revision does not count as handled")

	trunkFile := filepath.Join(h.confDir, "pbxfleet_pjsip_wizard.conf")
	written, err := os.ReadFile(trunkFile)
	require.NoError(t, err)
	reloads := countPrefix(h.commands(), "module reload res_pjsip.so")

	h.start()
	r := h.nextResult()
	require.Equal(t, events.OutcomeAwaitingProbe, r.Outcome, r.Reason)
	// The files Asterisk ran stayed (the far side may have been ordered to
	// probe them): no restore and no reload of the old ones, one reload of
	// the same bytes by the new apply.
	now, err := os.ReadFile(trunkFile)
	require.NoError(t, err)
	assert.Equal(t, written, now)
	assert.Equal(t, reloads+1, countPrefix(h.commands(), "module reload res_pjsip.so"), "only the new apply reloads")
	ans, _ := h.order(events.ProbeOrder{Rollout: "r-test", Revision: 1, Action: events.ProbeActionProbe})
	require.True(t, ans.Accepted, ans.Detail)
	require.Equal(t, events.OutcomeConverged, h.nextResult().Outcome)
}

// TestResumedApplyRollsBackToTheRealPrevious: an apply resumed after a
// restart (it was awaiting its order) that then fails puts back the bytes
// from before its first start, not its own.
func TestResumedApplyRollsBackToTheRealPrevious(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RoleOML)
	stop := h.start()
	h.put(1, seedTrunk())
	require.Equal(t, events.OutcomeConverged, h.nextResult().Outcome)
	trunkFile := filepath.Join(h.confDir, "pbxfleet_pjsip_wizard.conf")
	first, err := os.ReadFile(trunkFile)
	require.NoError(t, err)

	second := seedTrunk()
	second.Secret = "Another-Secret-For-Rev-2"
	h.putOnOrder(2, second)
	require.Equal(t, events.OutcomeAwaitingProbe, h.nextResult().Outcome)
	stop()
	h.start()
	require.Equal(t, events.OutcomeAwaitingProbe, h.nextResult().Outcome)
	ans, _ := h.order(events.ProbeOrder{Rollout: "r-test", Revision: 2, Action: events.ProbeActionCancel, Reason: "the far side failed"})
	require.True(t, ans.Accepted, ans.Detail)
	r := h.nextResult()
	require.Equal(t, events.OutcomeRolledBack, r.Outcome, r.Reason)
	back, err := os.ReadFile(trunkFile)
	require.NoError(t, err)
	assert.Equal(t, string(first), string(back), "revision 1's bytes are back")
}

// TestProbeIsNeverRetried: a probe that fails (wrong secret on the far side) is
// one call, whether in an apply or a check: each failed call is an
// authentication failure the far side's fail2ban counts.
func TestProbeIsNeverRetried(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.start()
	h.setMode("badsecret")
	h.put(1, seedTrunk())
	r := h.nextResult()
	require.Equal(t, events.OutcomeRolledBack, r.Outcome)
	assert.Equal(t, VerdictAuthOrFarTrunk, r.Probe.Verdict)
	assert.Equal(t, 1, countPrefix(h.commands(), "channel originate"))

	checker, err := New(h.config(), h.side(), nil, nil)
	require.NoError(t, err)
	h.setMode("ok")
	h.put(2, seedTrunk())
	require.Equal(t, events.OutcomeConverged, h.nextResult().Outcome)
	h.setMode("badsecret")
	rep, err := checker.Check(context.Background(), true)
	require.NoError(t, err)
	assert.False(t, rep.Passed)
	assert.Equal(t, 3, countPrefix(h.commands(), "channel originate"), "apply 1, apply 2, one check: one call each")
}

// TestChecksAsRealAsteriskBehaves: the behaviours real Asterisk showed.
func TestChecksAsRealAsteriskBehaves(t *testing.T) {
	srv := natstest.Start(t)
	tests := []struct {
		name, role, mode string
		verify           time.Duration
		want             events.Outcome
		check, detail    string
	}{
		// D3: the object appears after the reload returned.
		{name: "late peer", role: events.RolePBX, mode: "slowreload", want: events.OutcomeConverged, check: CheckObject, detail: "exists"},
		{name: "late endpoint", role: events.RoleOML, mode: "slowreload", want: events.OutcomeConverged, check: CheckObject, detail: "exists"},
		// D1: a new chan_sip peer not qualified yet is pending; the probe decides.
		{name: "unknown peer", role: events.RolePBX, mode: "unknown", want: events.OutcomeConverged, check: CheckQualify, detail: "has not qualified it yet"},
		// D2: LAGGED refuses calls.
		{name: "lagged peer", role: events.RolePBX, mode: "lagged", verify: time.Second, want: events.OutcomeRolledBack, check: CheckQualify, detail: "refuses calls"},
		// D5: a check cut by the deadline says so.
		{name: "dialplan out of time", role: events.RolePBX, mode: "slowdialplan", verify: time.Second, want: events.OutcomeRolledBack, check: CheckDialplan, detail: "ran out of time"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site := "real-" + string(rune('a'+i))
			h := newHarnessFor(t, srv, site, tt.role)
			if tt.verify > 0 {
				h.verify = tt.verify
			}
			h.start()
			h.setMode(tt.mode)
			h.put(1, seedTrunkFor(site))
			r := h.nextResult()
			require.Equal(t, tt.want, r.Outcome, r.Reason)
			c, ok := checkByName(r, tt.check)
			require.True(t, ok)
			assert.Contains(t, c.Detail, tt.detail)
		})
	}
}

// TestTrunkObjectEvidence (D8): the OMniLeads side keeps the endpoint's own
// lines, the PBX side the peer's (its Description line is where real
// Asterisk shows the revision mark the check waited for), not the header.
func TestTrunkObjectEvidence(t *testing.T) {
	srv := natstest.Start(t)
	for _, tt := range []struct{ role, want string }{
		{events.RoleOML, "Endpoint:  issabel"},
		{events.RolePBX, "Addr->IP     : 127.0.0.3:5161"},
		{events.RolePBX, "Description  :"}, // the fake shows the capture's, without a mark; real Asterisk: test/realasterisk
	} {
		t.Run(tt.role, func(t *testing.T) {
			h := newHarnessFor(t, srv, "ev-1", tt.role)
			h.start()
			h.put(1, seedTrunkFor("ev-1"))
			r := h.nextResult()
			require.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
			c, _ := checkByName(r, CheckObject)
			assert.Contains(t, strings.Join(c.Raw, "\n"), tt.want)
			assert.NotContains(t, strings.Join(c.Raw, "\n"), "<Endpoint/CID", "not the header placeholders")
		})
	}
}

// TestPBXNeverForcesAQualify (D1): a forced chan_sip qualify that gets no answer
// stops chan_sip's own cycle for the peer; pbx-node only reads its state.
func TestPBXNeverForcesAQualify(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.start()
	h.put(1, seedTrunk())
	require.Equal(t, events.OutcomeConverged, h.nextResult().Outcome)
	h.setMode("unreachable")
	h.verify = time.Second
	h.put(2, seedTrunk())
	require.Equal(t, events.OutcomeRolledBack, h.nextResult().Outcome)
	assert.Zero(t, countPrefix(h.commands(), "sip qualify"), "commands: %v", h.commands())
	assert.NotZero(t, countPrefix(h.commands(), "sip show peers"))
}

// TestRollbackWithoutReloadIsAFailure (D7): when the reload after restoring the
// previous files fails (Asterisk is not running), the result says failed.
func TestRollbackWithoutReloadIsAFailure(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.start()
	h.put(1, seedTrunk())
	require.Equal(t, events.OutcomeConverged, h.nextResult().Outcome)
	h.setMode("down")
	h.put(2, seedTrunk())
	r := h.nextResult()
	require.Equal(t, events.OutcomeFailed, r.Outcome, r.Reason)
	assert.Contains(t, r.Reason, "the reload failed")
	rc, ok := checkByName(r, "rollback_"+CheckReload)
	require.True(t, ok)
	assert.False(t, rc.Passed)
}

// TestAwaitingProbeIsPublishedWhileWaiting: when the awaiting_probe report
// cannot be published at first (the results stream is gone for a moment: a
// server lost, a leader election), the agent keeps publishing it from its
// outbox while it waits for the order, since the orchestrator orders the probe
// only once it has read that report. Before, the report waited in the outbox
// until the wait ended without an order (TestClusterServerLostMidRollout's
// sites that never converged).
func TestAwaitingProbeIsPublishedWhileWaiting(t *testing.T) {
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.probeWait = 60 * time.Second
	ctx := context.Background()
	var logs syncbuf.Buffer
	h.start(WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	site, role, _ := events.ParseNodeID(h.node)
	// The agent's endpoints answer once it runs (start returns before).
	require.Eventually(t, func() bool {
		_, err := srv.Conn.Request(events.StatusSubject(site, role), nil, time.Second)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the agent runs")
	require.NoError(t, srv.JS.DeleteStream(ctx, events.StreamResults))
	h.putOnOrder(1, seedTrunk())
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(h.stateDir, "journal.json"))
		return strings.Contains(string(b), `"awaiting_probe"`)
	}, 30*time.Second, 20*time.Millisecond, "the agent awaits the order")
	// The publish times out (no stream), then the report is kept.
	require.Eventually(t, func() bool {
		entries, _ := os.ReadDir(filepath.Join(h.stateDir, "outbox"))
		return len(entries) == 1
	}, 20*time.Second, 20*time.Millisecond, "the awaiting_probe report is kept in the outbox: no results stream")
	// Two more tries from the outbox, each refused (no stream), before the
	// stream comes back: the report then arrives by a retry, not the first try.
	const keptLine = "publish result; kept in the outbox"
	tries := strings.Count(logs.String(), keptLine)
	require.Eventually(t, func() bool { return strings.Count(logs.String(), keptLine) >= tries+2 },
		20*time.Second, 20*time.Millisecond, "the agent retries its outbox while it waits")
	require.NoError(t, bus.Provision(ctx, srv.JS, bus.ProvisionConfig{}))
	c, err := srv.JS.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	msg, err := c.Next(jetstream.FetchMaxWait(10 * time.Second))
	require.NoError(t, err, "the report reached the stream while the agent waits")
	r, err := events.DecodeResult(msg.Data(), msg.Headers(), msg.Subject())
	require.NoError(t, err)
	assert.Equal(t, events.OutcomeAwaitingProbe, r.Outcome)

	ans, _ := h.order(events.ProbeOrder{Rollout: "r-test", Revision: 1, Action: events.ProbeActionProbe})
	require.True(t, ans.Accepted, "still waiting for the order: %s", ans.Detail)
	msg, err = c.Next(jetstream.FetchMaxWait(20 * time.Second))
	require.NoError(t, err)
	r, err = events.DecodeResult(msg.Data(), msg.Headers(), msg.Subject())
	require.NoError(t, err)
	assert.Equal(t, events.OutcomeConverged, r.Outcome, r.Reason)
}
