package orchestrator

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/textclip"
)

// Phase is where a rollout is in its life.
type Phase string

// The phases of a rollout. Running, paused, rolling back and aborting are
// driven by Run; the others are terminal (a succeeded or aborted rollout may
// still be rolled back).
const (
	// PhaseRunning: waves are being put and observed.
	PhaseRunning Phase = "running"
	// PhasePaused: no new site starts; sites in flight finish.
	PhasePaused Phase = "paused"
	// PhaseRollingBack: the previous intents are being put back and observed.
	PhaseRollingBack Phase = "rolling_back"
	// PhaseAborting: the sites that had not converged are being restored.
	PhaseAborting Phase = "aborting"
	// PhaseSucceeded: every wave completed within the budget.
	PhaseSucceeded Phase = "succeeded"
	// PhaseFailed: a rollback did not confirm every node's previous intent.
	PhaseFailed Phase = "failed"
	// PhaseRolledBack: every node the rollout touched runs its previous intent.
	PhaseRolledBack Phase = "rolled_back"
	// PhaseAborted: the abort finished; converged sites keep the new intent.
	PhaseAborted Phase = "aborted"
)

// Terminal reports whether no driver has anything left to do in the phase.
func (p Phase) Terminal() bool {
	switch p {
	case PhaseSucceeded, PhaseFailed, PhaseRolledBack, PhaseAborted:
		return true
	}
	return false
}

// OriginRepair marks a rollout the orchestrator started to repair sites.
const OriginRepair = "repair"

// SiteOutcome is where one site of a rollout stands.
type SiteOutcome string

// The outcomes of a site.
const (
	// SitePending: not started yet.
	SitePending SiteOutcome = "pending"
	// SiteInFlight: desired states put, waiting for both nodes.
	SiteInFlight SiteOutcome = "in_flight"
	// SiteConverged: every node converged.
	SiteConverged SiteOutcome = "converged"
	// SiteFailed: a node reported failed, rolled_back or rejected.
	SiteFailed SiteOutcome = "failed"
	// SiteUnreachable: the deadline passed before every node reported.
	SiteUnreachable SiteOutcome = "unreachable"
	// SiteSkipped: every node already runs the planned intent.
	SiteSkipped SiteOutcome = "skipped"
	// SiteCancelled: in flight when a rollback or abort put the previous intent
	// back before every node reported.
	SiteCancelled SiteOutcome = "cancelled"
)

// done reports whether the site has a final outcome.
func (o SiteOutcome) done() bool {
	return o != SitePending && o != SiteInFlight
}

// Rollout is the persisted state of one rollout, the JSON value of key
// rollout.<id> in the pbxfleet_rollouts bucket. It holds no secrets: the intents
// are kept apart, under plan.<id>.<site>.
type Rollout struct {
	// ID is the rollout id, e.g. 20260102-150405-a1b2c3.
	ID string `json:"id"`
	// Origin is who started it: empty for an operator, OriginRepair for the
	// orchestrator's own repair of sites that do not run their desired state.
	Origin string `json:"origin,omitempty"`
	// PlanHash identifies the plan.
	PlanHash string `json:"plan_hash"`
	// Strategy is the strategy with its defaults filled in.
	Strategy Strategy `json:"strategy"`
	// Phase is where the rollout is.
	Phase Phase `json:"phase"`
	// Reason and Message explain the last phase change (reasons.go).
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Wave is the current wave, counted from 1 as everywhere a wave is shown
	// (progress, tables, messages, metrics); 0 when no site needs a wave.
	Wave int `json:"wave"`
	// Waves is the number of waves.
	Waves int `json:"waves"`
	// Canary says wave 1 is a canary wave.
	Canary bool `json:"canary,omitempty"`
	// BakeUntil is when the bake after the current wave ends, when baking.
	BakeUntil *time.Time `json:"bake_until,omitempty"`
	// Sites are the plan's sites in plan order. The stored header holds none:
	// each site is a key of its own (see record.go).
	Sites []SiteState `json:"sites,omitempty"`
	// SitesOmitted counts the sites an answer left out to fit a message (the
	// service's status of a very large rollout); never stored.
	SitesOmitted int `json:"sites_omitted,omitempty"`
	// Counters are derived from Sites on every pass.
	Counters Counters `json:"counters"`
	// Accepted are the failures an operator accepted by resuming after the
	// budget paused the rollout; the budget counts from there.
	Accepted Accepted `json:"accepted"`
	// ResultSeq is the last PBXFLEET_RESULTS sequence folded into this state;
	// observing resumes after it.
	ResultSeq uint64 `json:"result_seq"`
	// CreatedAt, UpdatedAt and FinishedAt are UTC.
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Messages are the latest phase and wave changes, oldest first.
	Messages []Message `json:"messages,omitempty"`
}

// Counters count the sites of a rollout by outcome, and the restores.
type Counters struct {
	// Sites is the number of sites in the plan; the next seven count them by
	// SiteOutcome.
	Sites       int `json:"sites"`
	Skipped     int `json:"skipped"`
	Pending     int `json:"pending"`
	InFlight    int `json:"in_flight"`
	Converged   int `json:"converged"`
	Failed      int `json:"failed"`
	Unreachable int `json:"unreachable"`
	Cancelled   int `json:"cancelled,omitempty"`
	// WaveFailed and WaveUnreachable count the failed and unreachable sites of
	// the current wave.
	WaveFailed      int `json:"wave_failed,omitempty"`
	WaveUnreachable int `json:"wave_unreachable,omitempty"`
	// Restored counts nodes whose previous intent converged again.
	Restored int `json:"restored,omitempty"`
	// RestorePending counts nodes restoring now.
	RestorePending int `json:"restore_pending,omitempty"`
	// RestoreFailed counts nodes whose restore failed or went unanswered.
	RestoreFailed int `json:"restore_failed,omitempty"`
}

// Accepted are the totals an operator accepted when resuming.
type Accepted struct {
	// Failed and Unreachable are the rollout's totals at the resume.
	Failed      int `json:"failed,omitempty"`
	Unreachable int `json:"unreachable,omitempty"`
	// Wave is the wave current at the resume; WaveFailed and WaveUnreachable
	// are its counts then.
	Wave            int `json:"wave,omitempty"`
	WaveFailed      int `json:"wave_failed,omitempty"`
	WaveUnreachable int `json:"wave_unreachable,omitempty"`
}

// Message is one entry of a rollout's history.
type Message struct {
	// At is when it happened (UTC); Reason is a reason constant, Message its text.
	At      time.Time `json:"at"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
}

// maxMessages caps Rollout.Messages.
const maxMessages = 50

// SiteState is one site of a rollout.
type SiteState struct {
	// Site is the site name.
	Site string `json:"site"`
	// Index is the site's place in the plan, from 0.
	Index int `json:"index"`
	// Wave is the site's wave, counted from 1; 0 when skipped.
	Wave int `json:"wave"`
	// Outcome is where the site stands.
	Outcome SiteOutcome `json:"outcome"`
	// Reason and Message explain a failed, unreachable or skipped site.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// StartedAt is when the site was started (its deadline runs from there);
	// FinishedAt is when its outcome was decided.
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Nodes are the site's nodes, pbx first.
	Nodes []NodeState `json:"nodes"`
}

// NodeState is one node of a site: what the rollout puts, what it replaces, what
// came back, and the restore if there was one.
type NodeState struct {
	// Role is events.RolePBX or events.RoleOML.
	Role string `json:"role"`
	// Revision is the revision this rollout puts; when UpToDate it is the
	// revision the node already runs and nothing is put.
	Revision uint64 `json:"revision"`
	// PrevRevision is the revision the key held before (0: none).
	PrevRevision uint64 `json:"prev_revision,omitempty"`
	// PrevUnreadable says the key held a value that does not decode (a hostile
	// put): the rollout overwrites it, and there is no previous intent.
	PrevUnreadable bool `json:"prev_unreadable,omitempty"`
	// ReplacedRevision is the revision this rollout put first, when the node
	// refused it as stale (it had handled a higher one: the store was lost or
	// the key deleted) and the rollout numbered it again above the node's.
	ReplacedRevision uint64 `json:"replaced_revision,omitempty"`
	// UpToDate says the node already ran the planned intent.
	UpToDate bool `json:"up_to_date,omitempty"`
	// Put says Revision is on the node's key (the site's StartedAt is when).
	Put bool `json:"put,omitempty"`
	// Result is the node's result for Revision.
	Result *NodeResult `json:"result,omitempty"`
	// RestoreRevision is the revision that puts the previous intent back
	// (Revision+1), set once a rollback or abort covers the node.
	RestoreRevision uint64 `json:"restore_revision,omitempty"`
	// RestoreAt is when RestoreRevision was put.
	RestoreAt *time.Time `json:"restore_at,omitempty"`
	// Restore is the node's result for RestoreRevision.
	Restore *NodeResult `json:"restore,omitempty"`
	// RestoreExpired says the site deadline passed without a restore result.
	RestoreExpired bool `json:"restore_expired,omitempty"`
	// RestoreNote says why a covered node needs or gets no restore, a reason
	// constant (ReasonNoPrevious, ReasonNotPut, ReasonSuperseded).
	RestoreNote string `json:"restore_note,omitempty"`
	// Probe is the node's probe phase for the revision it is applying.
	Probe *ProbeState `json:"probe,omitempty"`
}

// NodeResult summarizes one events.Result.
type NodeResult struct {
	// Outcome and Reason are the node's (Reason clipped to 200 bytes).
	Outcome events.Outcome `json:"outcome"`
	Reason  string         `json:"reason,omitempty"`
	// TrunkState and RTTMS are the trunk as the node saw it.
	TrunkState string  `json:"trunk_state,omitempty"`
	RTTMS      float64 `json:"rtt_ms,omitempty"`
	// Probe is the probe call's verdict, when one was made.
	Probe string `json:"probe,omitempty"`
	// DurationMS is the apply's duration; At is when it finished.
	DurationMS int64     `json:"duration_ms"`
	At         time.Time `json:"at"`
	// Seq is the result's PBXFLEET_RESULTS sequence (0: synthesized here).
	Seq uint64 `json:"seq,omitempty"`
}

// Text limits of the record: a node's reason, a site's message.
const (
	maxReasonLen      = 200
	maxSiteMessageLen = 400
)

func summarize(r events.Result, seq uint64) *NodeResult {
	nr := &NodeResult{
		Outcome: r.Outcome, Reason: textclip.Clip(r.Reason, maxReasonLen), TrunkState: r.Trunk.State, RTTMS: r.Trunk.RTTMS,
		DurationMS: r.FinishedAt.Sub(r.StartedAt).Milliseconds(), At: r.FinishedAt.UTC().Truncate(time.Millisecond), Seq: seq,
	}
	if r.Probe != nil {
		nr.Probe = r.Probe.Verdict
	}
	return nr
}

// nowUTC is the engine's clock: UTC, to the millisecond, which is all a rollout
// record needs and keeps it small.
func nowUTC() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// node returns the id of the site's node of role.
func (s SiteState) node(role string) string { return events.NodeID(s.Site, role) }

// Site returns the state of a site and whether the rollout has it.
func (r Rollout) Site(site string) (SiteState, bool) {
	for _, s := range r.Sites {
		if s.Site == site {
			return s, true
		}
	}
	return SiteState{}, false
}

// Done reports whether the rollout is in a terminal phase.
func (r Rollout) Done() bool { return r.Phase.Terminal() }

// note records a phase or wave change in Reason/Message (phase changes only)
// and the history.
func (r *Rollout) note(now time.Time, reason, msg string, phaseChange bool) {
	if phaseChange {
		r.Reason, r.Message = reason, msg
	}
	r.Messages = append(r.Messages, Message{At: now, Reason: reason, Message: msg})
	if len(r.Messages) > maxMessages {
		r.Messages = slices.Delete(r.Messages, 0, len(r.Messages)-maxMessages)
	}
}

// setPhase moves to phase with a reason and message.
func (r *Rollout) setPhase(now time.Time, phase Phase, reason, msg string) {
	r.Phase = phase
	r.note(now, reason, msg, true)
	if phase.Terminal() {
		t := now
		r.FinishedAt = &t
	} else {
		r.FinishedAt = nil
	}
}

// count recomputes the counters from the sites.
func (r *Rollout) count() {
	c := Counters{Sites: len(r.Sites)}
	c.WaveFailed, c.WaveUnreachable = r.waveCounts(r.Wave)
	for _, s := range r.Sites {
		switch s.Outcome {
		case SiteSkipped:
			c.Skipped++
		case SitePending:
			c.Pending++
		case SiteInFlight:
			c.InFlight++
		case SiteConverged:
			c.Converged++
		case SiteFailed:
			c.Failed++
		case SiteUnreachable:
			c.Unreachable++
		case SiteCancelled:
			c.Cancelled++
		}
		for _, n := range s.Nodes {
			switch {
			case n.RestoreRevision == 0 || n.RestoreNote != "":
			case n.Restore != nil && n.Restore.Outcome == events.OutcomeConverged:
				c.Restored++
			case n.Restore != nil || n.RestoreExpired:
				c.RestoreFailed++
			default:
				c.RestorePending++
			}
		}
	}
	r.Counters = c
}

// waveCounts returns the failed and unreachable sites of wave w.
func (r *Rollout) waveCounts(w int) (failed, unreachable int) {
	for _, s := range r.Sites {
		if s.Wave != w {
			continue
		}
		switch s.Outcome {
		case SiteFailed:
			failed++
		case SiteUnreachable:
			unreachable++
		}
	}
	return failed, unreachable
}

// String is a one-line summary for logs and errors.
func (r Rollout) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rollout %s %s wave %d/%d", r.ID, r.Phase, r.Wave, r.Waves)
	c := r.Counters
	fmt.Fprintf(&b, " converged=%d failed=%d unreachable=%d in_flight=%d pending=%d skipped=%d",
		c.Converged, c.Failed, c.Unreachable, c.InFlight, c.Pending, c.Skipped)
	return b.String()
}
