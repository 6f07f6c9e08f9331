package events

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/pbxfleet/pbxfleet/internal/textclip"
)

// Outcome is how one apply of a desired state ended.
type Outcome string

// The outcomes of an apply.
const (
	// OutcomeConverged means the node applied the revision and verified the trunk.
	OutcomeConverged Outcome = "converged"
	// OutcomeFailed means the apply failed and nothing had to be restored.
	OutcomeFailed Outcome = "failed"
	// OutcomeRolledBack means the apply failed and the node restored the previous files.
	OutcomeRolledBack Outcome = "rolled_back"
	// OutcomeRejected means the node refused the desired state (invalid, stale).
	OutcomeRejected Outcome = "rejected"
	// OutcomeAwaitingProbe is not an end: the node applied the revision and its
	// checks passed, and it waits for the probe order (ProbeOnOrder). Its final
	// result for the revision follows.
	OutcomeAwaitingProbe Outcome = "awaiting_probe"
)

// Final reports whether the outcome ends the apply of its revision.
func (o Outcome) Final() bool { return o != OutcomeAwaitingProbe }

// Validate returns nil for a known outcome and an error wrapping ErrInvalidField
// otherwise.
func (o Outcome) Validate() error {
	switch o {
	case OutcomeConverged, OutcomeFailed, OutcomeRolledBack, OutcomeRejected, OutcomeAwaitingProbe:
		return nil
	}
	return fmt.Errorf("%w: outcome %q is not %s, %s, %s, %s or %s", ErrInvalidField, textclip.Value(string(o)),
		OutcomeConverged, OutcomeFailed, OutcomeRolledBack, OutcomeRejected, OutcomeAwaitingProbe)
}

// The phases of an apply, the keys of Result.Timings.
const (
	// PhaseRender is rendering the intent into file contents.
	PhaseRender = "render"
	// PhaseWrite is writing the managed files.
	PhaseWrite = "write"
	// PhaseReload is reloading Asterisk.
	PhaseReload = "reload"
	// PhaseVerify is verifying the trunk (object, qualify, probe call).
	PhaseVerify = "verify"
	// PhaseRollback is restoring the previous files and reloading again.
	PhaseRollback = "rollback"
)

// Phases returns the apply phases in order.
func Phases() []string {
	return []string{PhaseRender, PhaseWrite, PhaseReload, PhaseVerify, PhaseRollback}
}

// Result is the outcome of one apply, the data of a pbxfleet.result.v1 event
// published by the node on ResultSubject.
type Result struct {
	// Node is the node id, <site>.<role>; it equals the subject's node.
	Node string `json:"node"`
	// Revision is the desired revision the apply was for; 0 only for a rejected
	// desired state whose revision could not be read.
	Revision uint64 `json:"revision"`
	// Rollout is the desired state's rollout id, if any.
	Rollout string `json:"rollout,omitempty"`
	// Outcome says how the apply ended.
	Outcome Outcome `json:"outcome"`
	// Reason says why an apply did not converge; required unless converged.
	Reason string `json:"reason,omitempty"`
	// StartedAt is when the node started the apply.
	StartedAt time.Time `json:"started_at"`
	// FinishedAt is when the node finished it (the event time).
	FinishedAt time.Time `json:"finished_at"`
	// Timings maps each phase that ran (Phases) to its duration in milliseconds.
	Timings map[string]int64 `json:"timings,omitempty"`
	// Files are the managed files as left by the apply.
	Files []FileHash `json:"files,omitempty"`
	// Checks are the verifications that ran, in order.
	Checks []Check `json:"checks,omitempty"`
	// Trunk is the trunk's state as last seen.
	Trunk TrunkState `json:"trunk"`
	// Probe is the probe call, when one was made.
	Probe *Probe `json:"probe,omitempty"`
	// RestoredRevision is the revision put back by a rollback (0: the files from
	// before any pbxfleet revision); only with OutcomeRolledBack.
	RestoredRevision uint64 `json:"restored_revision,omitempty"`
	// HandledRevision is set on a desired state rejected as stale: the highest
	// revision the node handled, so the orchestrator can number above it (after
	// its store was lost, or a key was deleted); only with OutcomeRejected.
	HandledRevision uint64 `json:"handled_revision,omitempty"`
}

// FileHash is a managed file and the SHA-256 of its contents.
type FileHash struct {
	// Name is the file's name as the agent's config knows it.
	Name string `json:"name"`
	// SHA256 is the lowercase hex SHA-256 of the contents.
	SHA256 string `json:"sha256"`
}

// Check is one verification step and its evidence.
type Check struct {
	// Name names the check, e.g. peer_exists, qualify, probe.
	Name string `json:"name"`
	// Passed says whether the check passed.
	Passed bool `json:"passed"`
	// Detail says what was seen, for people.
	Detail string `json:"detail,omitempty"`
	// Raw are the raw CLI lines that prove it.
	Raw []string `json:"raw,omitempty"`
}

// TrunkState is the trunk as the node's Asterisk reports it.
type TrunkState struct {
	// State is Asterisk's word for it: OK, LAGGED, UNREACHABLE, UNKNOWN (chan_sip),
	// Avail, Unavail, NonQual, Unknown (pjsip), ...
	State string `json:"state"`
	// RTTMS is the qualify round trip in milliseconds (0 when unknown).
	RTTMS float64 `json:"rtt_ms"`
	// Reachable says whether the far side answered the qualify.
	Reachable bool `json:"reachable"`
}

// Probe is the probe call over the trunk (docs/asterisk.md#the-probe-call).
type Probe struct {
	// Number is the number dialled.
	Number string `json:"number"`
	// DialStatus is the call's DIALSTATUS, e.g. CONGESTION.
	DialStatus string `json:"dial_status"`
	// HangupCause is the call's HANGUPCAUSE, e.g. 1 or 21.
	HangupCause int `json:"hangup_cause"`
	// Verdict is what the call proves, e.g. trunk_works, auth_or_far_trunk, no_answer.
	Verdict string `json:"verdict"`
}

// EventType returns TypeResult.
func (Result) EventType() string { return TypeResult }

// NodeID returns the node that applied.
func (r Result) NodeID() string { return r.Node }

// EventID returns the deterministic event id,
// result-<node>-<revision>-<outcome>-<started_at unix ns>: a resend of the same
// result deduplicates, a new attempt at the same revision does not.
func (r Result) EventID() string {
	return "result-" + r.Node + "-" + strconv.FormatUint(r.Revision, 10) + "-" + string(r.Outcome) +
		"-" + strconv.FormatInt(r.StartedAt.UnixNano(), 10)
}

// Validate returns nil when the result is well formed, and otherwise every
// problem joined, each wrapping ErrInvalidNode, ErrInvalidRevision or
// ErrInvalidField.
func (r Result) Validate() error {
	var p problems
	if _, _, err := ParseNodeID(r.Node); err != nil {
		p.addErr(fmt.Errorf("node: %w", err))
	}
	if err := r.Outcome.Validate(); err != nil {
		p.addErr(err)
	}
	if r.Revision == 0 && r.Outcome != OutcomeRejected {
		p.add(ErrInvalidRevision, "revision must be at least 1 unless the outcome is %s", OutcomeRejected)
	}
	if r.Outcome != OutcomeConverged && r.Outcome != OutcomeAwaitingProbe && r.Reason == "" {
		p.add(ErrInvalidField, "reason is required with outcome %q", textclip.Value(string(r.Outcome)))
	}
	if r.StartedAt.IsZero() {
		p.add(ErrInvalidField, "started_at is required")
	}
	if r.FinishedAt.IsZero() {
		p.add(ErrInvalidField, "finished_at is required")
	}
	if r.FinishedAt.Before(r.StartedAt) {
		p.add(ErrInvalidField, "finished_at is before started_at")
	}
	for phase, ms := range r.Timings {
		if !isPhase(phase) {
			p.add(ErrInvalidField, "timings: %q is not a phase", textclip.Value(phase))
		}
		if ms < 0 {
			p.add(ErrInvalidField, "timings.%s %d is negative", textclip.Value(phase), ms)
		}
	}
	for i, f := range r.Files {
		p.nonEmpty(fmt.Sprintf("files[%d].name", i), f.Name)
		if !isSHA256(f.SHA256) {
			p.add(ErrInvalidField, "files[%d].sha256 is not 64 lowercase hex digits", i)
		}
	}
	for i, c := range r.Checks {
		p.nonEmpty(fmt.Sprintf("checks[%d].name", i), c.Name)
	}
	r.Trunk.validate(&p, "trunk")
	if r.Probe != nil {
		p.nonEmpty("probe.number", r.Probe.Number)
		p.nonEmpty("probe.verdict", r.Probe.Verdict)
		if r.Probe.HangupCause < 0 {
			p.add(ErrInvalidField, "probe.hangup_cause %d is negative", r.Probe.HangupCause)
		}
	}
	if r.HandledRevision != 0 && r.Outcome != OutcomeRejected {
		p.add(ErrInvalidField, "handled_revision is only for outcome %s", OutcomeRejected)
	}
	if r.RestoredRevision != 0 {
		if r.Outcome != OutcomeRolledBack {
			p.add(ErrInvalidField, "restored_revision is only for outcome %s", OutcomeRolledBack)
		}
		if r.RestoredRevision >= r.Revision {
			p.add(ErrInvalidField, "restored_revision %d is not older than revision %d", r.RestoredRevision, r.Revision)
		}
	}
	return p.err()
}

func (s TrunkState) validate(p *problems, field string) {
	p.nonEmpty(field+".state", s.State)
	if s.RTTMS < 0 || math.IsNaN(s.RTTMS) || math.IsInf(s.RTTMS, 0) {
		p.add(ErrInvalidField, "%s.rtt_ms %v is not a duration", field, s.RTTMS)
	}
}

func isPhase(s string) bool {
	for _, ph := range Phases() {
		if s == ph {
			return true
		}
	}
	return false
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
