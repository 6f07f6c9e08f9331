package orchestrator

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/pbxfleet/pbxfleet/events"
)

// These tests run the pure steps of a pass (evaluate, budget, advance,
// startSites) on a fixture record and assert the exact resulting state; the
// steps with I/O are covered against the real NATS server in engine_test.go.

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
	}{
		{
			name: "wave converged: next wave starts within the parallelism",
			r: Rollout{Strategy: with(func(s *Strategy) { s.Parallelism = 2 }), Waves: 2, Sites: []SiteState{
				st("a", 1, SiteInFlight, conv, conv), st("b", 2, SitePending), st("c", 2, SitePending), st("d", 2, SitePending),
			}},
			wantPhase: PhaseRunning, wantWave: 2,
			wantSites: map[string]SiteOutcome{"a": SiteConverged, "b": SiteInFlight, "c": SiteInFlight, "d": SitePending},
		},
		{
			name: "a failed node before the deadline waits for the other",
			r: Rollout{Strategy: base, Waves: 1, Sites: []SiteState{
				st("a", 1, SiteInFlight, failed, nil),
			}},
			now: 30 * time.Second, mayExpire: true, wantWave: 1, wantPhase: PhaseRunning,
			wantSites: map[string]SiteOutcome{"a": SiteInFlight}, wantWake: time.Minute,
		},
		{
			name: "past the deadline but the results feed is not caught up: no verdict",
			r: Rollout{Strategy: base, Waves: 1, Sites: []SiteState{
				st("a", 1, SiteInFlight, conv, nil),
			}},
			now: 2 * time.Minute, wantWave: 1, wantPhase: PhaseRunning, // wake at the (past) deadline: pass again at once
			wantSites: map[string]SiteOutcome{"a": SiteInFlight}, wantWake: time.Minute,
		},
		{
			name: "unreachable within the budget: the rollout succeeds",
			r: Rollout{Strategy: with(func(s *Strategy) { s.MaxUnreachable = 1 }), Waves: 1, Sites: []SiteState{
				st("a", 1, SiteInFlight, conv, nil), st("b", 1, SiteInFlight, conv, conv),
			}},
			now: 2 * time.Minute, mayExpire: true, wantWave: 1, wantPhase: PhaseSucceeded,
			wantSites: map[string]SiteOutcome{"a": SiteUnreachable, "b": SiteConverged},
		},
		{
			name: "failed and silent past the deadline counts as failed",
			r: Rollout{Strategy: with(func(s *Strategy) { s.MaxUnreachable = 5 }), Waves: 1, Sites: []SiteState{
				st("a", 1, SiteInFlight, failed, nil),
			}},
			now: 2 * time.Minute, mayExpire: true, wantWave: 1, wantPhase: PhaseRollingBack,
			wantSites: map[string]SiteOutcome{"a": SiteFailed},
		},
		{
			name: "a canary must converge whatever the budget",
			r: Rollout{Strategy: with(func(s *Strategy) { s.MaxUnreachable, s.OnFailure = 9, OnFailurePause }), Waves: 2, Canary: true,
				Sites: []SiteState{st("a", 1, SiteInFlight, conv, nil), st("b", 2, SitePending)}},
			now: 2 * time.Minute, mayExpire: true, wantWave: 1, wantPhase: PhasePaused,
			wantSites: map[string]SiteOutcome{"a": SiteUnreachable, "b": SitePending},
		},
		{
			name: "failures accepted at a resume do not count again",
			r: Rollout{Strategy: base, Waves: 2, Accepted: Accepted{Failed: 1, Wave: 1, WaveFailed: 1}, Sites: []SiteState{
				st("a", 1, SiteFailed, failed, conv), st("b", 1, SiteInFlight, conv, conv), st("c", 2, SitePending),
			}},
			wantPhase: PhaseRunning, wantWave: 2,
			wantSites: map[string]SiteOutcome{"a": SiteFailed, "b": SiteConverged, "c": SiteInFlight},
		},
		{
			name: "a finished wave bakes before the next",
			r: Rollout{Strategy: with(func(s *Strategy) { s.Bake = 5 * time.Minute }), Waves: 2, Sites: []SiteState{
				st("a", 1, SiteInFlight, conv, conv), st("b", 2, SitePending),
			}},
			wantPhase: PhaseRunning, wantWave: 1, wantBake: true, wantWake: 5 * time.Minute,
			wantSites: map[string]SiteOutcome{"a": SiteConverged, "b": SitePending},
		},
		{
			name: "the bake is over",
			r: Rollout{Strategy: with(func(s *Strategy) { s.Bake = 5 * time.Minute }), Waves: 2, BakeUntil: at(5 * time.Minute),
				Sites: []SiteState{st("a", 1, SiteConverged, conv, conv), st("b", 2, SitePending)}},
			now: 6 * time.Minute, wantPhase: PhaseRunning, wantWave: 2,
			wantSites: map[string]SiteOutcome{"a": SiteConverged, "b": SiteInFlight},
		},
		{
			name: "the per-wave budget counts the current wave only",
			r: Rollout{Strategy: with(func(s *Strategy) { s.MaxFailed, s.WaveMaxFailed = 5, 0 }), Waves: 2, Wave: 2, Sites: []SiteState{
				st("a", 1, SiteFailed, failed, conv), st("b", 2, SiteInFlight, conv, conv),
			}},
			wantPhase: PhaseSucceeded, wantWave: 2,
			wantSites: map[string]SiteOutcome{"a": SiteFailed, "b": SiteConverged},
		},
		{
			name:      "nothing to do",
			r:         Rollout{Strategy: base, Waves: 0, Sites: []SiteState{{Site: "a", Wave: 0, Outcome: SiteSkipped}}},
			wantPhase: PhaseSucceeded, wantSites: map[string]SiteOutcome{"a": SiteSkipped},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			r.Phase = PhaseRunning
			if r.Wave == 0 && r.Waves > 0 {
				r.Wave = 1 // a rollout with waves starts at wave 1
			}
			p := &passState{d: &driver{e: &Engine{log: slog.New(slog.NewTextHandler(io.Discard, nil))}}, r: &r,
				now: t0.Add(tt.now), mayExpire: tt.mayExpire}
			p.evaluate()
			if !p.budget() {
				p.advance()
				if r.Phase == PhaseRunning {
					p.startSites()
				}
			}
			assert.Equal(t, tt.wantPhase, r.Phase, r.Message)
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
