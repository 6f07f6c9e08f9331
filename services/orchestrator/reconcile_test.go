package orchestrator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
)

// TestReconcileSteps runs the real pass (run) on a fixture record against a real
// NATS server and compares the resulting record: phase, reason, message, wave,
// each site's outcome, the counters, the bake and the next wake-up. The
// restore decision has its own table (restore_test.go); whole rollouts run in
// engine_test.go.

var t0 = time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)

func at(d time.Duration) *time.Time { t := t0.Add(d); return &t }

func res(o events.Outcome) *NodeResult { return &NodeResult{Outcome: o, Reason: "r", At: t0} }

// st builds a site; each result is one node's (nil: not reported).
func st(name string, wave int, outcome SiteOutcome, results ...*NodeResult) SiteState {
	s := SiteState{Site: name, Wave: wave, Outcome: outcome}
	if outcome == SiteInFlight {
		s.StartedAt = at(0)
	}
	for i, r := range results {
		s.Nodes = append(s.Nodes, NodeState{Role: roles[i], Revision: 2, Put: s.StartedAt != nil, Result: r})
	}
	return s
}

func TestReconcileSteps(t *testing.T) {
	conv, failed := res(events.OutcomeConverged), res(events.OutcomeRolledBack)
	base := Strategy{SiteDeadline: time.Minute, WaveMaxFailed: NoLimit, WaveMaxUnreachable: NoLimit, OnFailure: OnFailureRollback}
	with := func(f func(*Strategy)) Strategy { s := base; f(&s); return s }
	tests := []struct {
		name      string
		r         Rollout
		now       time.Duration // since t0
		mayExpire bool
		wantPhase Phase
		wantWave  int
		wantSites map[string]SiteOutcome
		wantWake  time.Duration // 0: none
		wantBake  bool
		// feedBehind: the results feed has not caught up with the stream (the
		// pass cannot read it now), so no deadline is declared passed.
		feedBehind bool
		// The rest of the record: reason, message and counters
		// (converged/failed/unreachable/in flight/pending).
		wantReason, wantMessage, wantCounts string
	}{
		{
			name: "wave converged: next wave starts within the parallelism",
			r: Rollout{Strategy: with(func(s *Strategy) { s.Parallelism = 2 }), Waves: 2, Sites: []SiteState{
				st("a", 1, SiteInFlight, conv, conv), st("b", 2, SitePending), st("c", 2, SitePending), st("d", 2, SitePending),
			}},
			wantPhase: PhaseRunning, wantWave: 2,
			wantSites:  map[string]SiteOutcome{"a": SiteConverged, "b": SiteInFlight, "c": SiteInFlight, "d": SitePending},
			wantReason: "", wantMessage: "", wantCounts: "1/0/0/2/1",
		},
		{
			name: "a failed node before the deadline waits for the other",
			r: Rollout{Strategy: base, Waves: 1, Sites: []SiteState{
				st("a", 1, SiteInFlight, failed, nil),
			}},
			now: 30 * time.Second, mayExpire: true, wantWave: 1, wantPhase: PhaseRunning,
			wantSites: map[string]SiteOutcome{"a": SiteInFlight}, wantWake: time.Minute,
			wantReason: "", wantMessage: "", wantCounts: "0/0/0/1/0",
		},
		{
			name: "past the deadline but the results feed is not caught up: no verdict",
			r: Rollout{Strategy: base, Waves: 1, Sites: []SiteState{
				st("a", 1, SiteInFlight, conv, nil),
			}},
			now: 2 * time.Minute, wantWave: 1, wantPhase: PhaseRunning, // wake at the (past) deadline: pass again at once
			wantSites: map[string]SiteOutcome{"a": SiteInFlight}, wantWake: time.Minute,
			wantReason: "", wantMessage: "", wantCounts: "0/0/0/1/0",
			feedBehind: true,
		},
		{
			name: "unreachable within the budget: the rollout succeeds",
			r: Rollout{Strategy: with(func(s *Strategy) { s.MaxUnreachable = 1 }), Waves: 1, Sites: []SiteState{
				st("a", 1, SiteInFlight, conv, nil), st("b", 1, SiteInFlight, conv, conv),
			}},
			now: 2 * time.Minute, mayExpire: true, wantWave: 1, wantPhase: PhaseSucceeded,
			wantSites:  map[string]SiteOutcome{"a": SiteUnreachable, "b": SiteConverged},
			wantReason: ReasonSucceeded, wantMessage: "rollout succeeded: 1 converged, 0 failed, 1 unreachable, 0 skipped", wantCounts: "1/0/1/0/0",
		},
		{
			name: "failed and silent past the deadline counts as failed",
			r: Rollout{Strategy: with(func(s *Strategy) { s.MaxUnreachable = 5 }), Waves: 1, Sites: []SiteState{
				st("a", 1, SiteInFlight, failed, nil),
			}},
			now: 2 * time.Minute, mayExpire: true, wantWave: 1, wantPhase: PhaseRollingBack,
			wantSites:  map[string]SiteOutcome{"a": SiteFailed},
			wantReason: ReasonBudgetExceeded, wantMessage: "1 sites failed, the budget allows 0; rolling back every node this rollout touched", wantCounts: "0/1/0/0/0",
		},
		{
			name: "a canary must converge whatever the budget",
			r: Rollout{Strategy: with(func(s *Strategy) { s.MaxUnreachable, s.OnFailure = 9, OnFailurePause }), Waves: 2, Canary: true,
				Sites: []SiteState{st("a", 1, SiteInFlight, conv, nil), st("b", 2, SitePending)}},
			now: 2 * time.Minute, mayExpire: true, wantWave: 1, wantPhase: PhasePaused,
			wantSites:  map[string]SiteOutcome{"a": SiteUnreachable, "b": SitePending},
			wantReason: ReasonCanaryFailed, wantMessage: "canary did not converge (a unreachable); later waves are not started; paused: resume to accept these failures and go on, or abort or roll back", wantCounts: "0/0/1/0/1",
		},
		{
			name: "failures accepted at a resume do not count again",
			r: Rollout{Strategy: base, Waves: 2, Accepted: Accepted{Failed: 1, Wave: 1, WaveFailed: 1}, Sites: []SiteState{
				st("a", 1, SiteFailed, failed, conv), st("b", 1, SiteInFlight, conv, conv), st("c", 2, SitePending),
			}},
			wantPhase: PhaseRunning, wantWave: 2,
			wantSites:  map[string]SiteOutcome{"a": SiteFailed, "b": SiteConverged, "c": SiteInFlight},
			wantReason: "", wantMessage: "", wantCounts: "1/1/0/1/0",
		},
		{
			name: "a finished wave bakes before the next",
			r: Rollout{Strategy: with(func(s *Strategy) { s.Bake = 5 * time.Minute }), Waves: 2, Sites: []SiteState{
				st("a", 1, SiteInFlight, conv, conv), st("b", 2, SitePending),
			}},
			wantPhase: PhaseRunning, wantWave: 1, wantBake: true, wantWake: 5 * time.Minute,
			wantSites:  map[string]SiteOutcome{"a": SiteConverged, "b": SitePending},
			wantReason: "", wantMessage: "", wantCounts: "1/0/0/0/1",
		},
		{
			name: "the bake is over",
			r: Rollout{Strategy: with(func(s *Strategy) { s.Bake = 5 * time.Minute }), Waves: 2, BakeUntil: at(5 * time.Minute),
				Sites: []SiteState{st("a", 1, SiteConverged, conv, conv), st("b", 2, SitePending)}},
			now: 6 * time.Minute, wantPhase: PhaseRunning, wantWave: 2,
			wantSites:  map[string]SiteOutcome{"a": SiteConverged, "b": SiteInFlight},
			wantReason: "", wantMessage: "", wantCounts: "1/0/0/1/0",
		},
		{
			name: "the per-wave budget counts the current wave only",
			r: Rollout{Strategy: with(func(s *Strategy) { s.MaxFailed, s.WaveMaxFailed = 5, 0 }), Waves: 2, Wave: 2, Sites: []SiteState{
				st("a", 1, SiteFailed, failed, conv), st("b", 2, SiteInFlight, conv, conv),
			}},
			wantPhase: PhaseSucceeded, wantWave: 2,
			wantSites:  map[string]SiteOutcome{"a": SiteFailed, "b": SiteConverged},
			wantReason: ReasonSucceeded, wantMessage: "rollout succeeded: 1 converged, 1 failed, 0 unreachable, 0 skipped", wantCounts: "1/1/0/0/0",
		},
		{
			name:      "nothing to do",
			r:         Rollout{Strategy: base, Waves: 0, Sites: []SiteState{{Site: "a", Wave: 0, Outcome: SiteSkipped}}},
			wantPhase: PhaseSucceeded, wantSites: map[string]SiteOutcome{"a": SiteSkipped},
			wantReason: ReasonSucceeded, wantMessage: "rollout succeeded: 0 converged, 0 failed, 0 unreachable, 1 skipped", wantCounts: "0/0/0/0/0",
		},
	}
	// The real pass (run) on a real NATS server: its I/O steps find nothing to
	// put (in-flight nodes were put; failed sites are kept) and a results
	// stream with nothing more to read, so a deadline due is declared passed
	// (mayExpire) exactly when the fixture says the feed caught up.
	ctx, _, e, _ := startFeedTest(t)
	f, err := e.openFeed(ctx, 1)
	assert.NoError(t, err)
	t.Cleanup(f.close)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			r.ID = "r-steps"
			r.Phase = PhaseRunning
			r.Strategy.OnSiteFailure = OnSiteFailureKeep
			if r.Wave == 0 && r.Waves > 0 {
				r.Wave = 1 // a rollout with waves starts at wave 1
			}
			p := &passState{d: e.newDriver(r.ID, f), r: &r, now: t0.Add(tt.now), mayExpire: tt.mayExpire}
			if tt.feedBehind {
				evaluateOnly(p)
			} else if err := p.run(ctx); err != nil {
				t.Fatalf("run: %v", err)
			}
			r.count()
			c := r.Counters
			assert.Equal(t, tt.wantPhase, r.Phase, r.Message)
			assert.Equal(t, tt.wantReason, r.Reason)
			assert.Equal(t, tt.wantMessage, r.Message)
			assert.Equal(t, tt.wantCounts, fmt.Sprintf("%d/%d/%d/%d/%d", c.Converged, c.Failed, c.Unreachable, c.InFlight, c.Pending))
			assert.Equal(t, tt.wantWave, r.Wave)
			got := map[string]SiteOutcome{}
			for _, s := range r.Sites {
				got[s.Site] = s.Outcome
			}
			assert.Equal(t, tt.wantSites, got)
			assert.Equal(t, tt.wantBake, r.BakeUntil != nil)
			if tt.wantWake == 0 {
				assert.True(t, p.wake.IsZero(), "wake %v", p.wake)
			} else {
				assert.Equal(t, t0.Add(tt.wantWake), p.wake)
			}
		})
	}
}

func TestFoldAwaiting(t *testing.T) {
	ordered := t0.Add(time.Second)
	ready := func(rev uint64, at time.Duration) events.Result {
		return events.Result{Revision: rev, Outcome: events.OutcomeAwaitingProbe, FinishedAt: t0.Add(at)}
	}
	tests := []struct {
		name string
		n    NodeState
		res  events.Result
		want *ProbeState
	}{
		{name: "first report", n: NodeState{Revision: 2, Put: true}, res: ready(2, 0),
			want: &ProbeState{Revision: 2, ReadyAt: t0}},
		{name: "the restore revision", n: NodeState{Revision: 2, Put: true, Result: res(events.OutcomeRolledBack), RestoreRevision: 3}, res: ready(3, 0),
			want: &ProbeState{Revision: 3, ReadyAt: t0}},
		{name: "another revision", n: NodeState{Revision: 2, Put: true}, res: ready(5, 0)},
		{name: "after the final result", n: NodeState{Revision: 2, Put: true, Result: res(events.OutcomeConverged)}, res: ready(2, 0)},
		{name: "again after the order: the node restarted and is ordered again",
			n:   NodeState{Revision: 2, Put: true, Probe: &ProbeState{Revision: 2, ReadyAt: t0, OrderedAt: &ordered, Action: events.ProbeActionProbe}},
			res: ready(2, 2*time.Second), want: &ProbeState{Revision: 2, ReadyAt: t0.Add(2 * time.Second)}},
		{name: "a late copy of the report the order answered",
			n:   NodeState{Revision: 2, Put: true, Probe: &ProbeState{Revision: 2, ReadyAt: t0, OrderedAt: &ordered, Action: events.ProbeActionProbe}},
			res: ready(2, 0), want: &ProbeState{Revision: 2, ReadyAt: t0, OrderedAt: &ordered, Action: events.ProbeActionProbe}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.n
			foldAwaiting(&n, tt.res)
			assert.Equal(t, tt.want, n.Probe)
		})
	}
}

// evaluateOnly runs the pure steps of a running pass in run's order, for the
// fixtures whose feed has not caught up (run would read the stream and then
// declare the deadlines it finds due).
func evaluateOnly(p *passState) {
	p.evaluate()
	if !p.budget() {
		p.advance()
		if p.r.Phase == PhaseRunning {
			p.startSites()
		}
	}
}

// TestWakeAtFromWorkers: the put and restore steps' workers each ask for a
// wake-up (a put to retry); run under -race (as CI does), the pass keeps the
// earliest without a data race (TestClusterServerLostMidRollout found one).
func TestWakeAtFromWorkers(t *testing.T) {
	p := &passState{}
	base := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	require.NoError(t, forEach(context.Background(), 64, 8, func(_ context.Context, i int) error {
		p.wakeAt(base.Add(time.Duration(64-i) * time.Second))
		return nil
	}))
	assert.Equal(t, base.Add(time.Second), p.wake)
}
