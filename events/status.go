package events

import (
	"fmt"
	"strconv"
	"time"
)

// Status is a node's health and drift, the data of a pbxfleet.status.v1 event
// kept in BucketStatus under the node's id and answered by the status endpoint.
type Status struct {
	// Node is the node id, <site>.<role>; it equals the KV key.
	Node string `json:"node"`
	// AppliedRevision is the revision the node's files hold (0: none yet).
	AppliedRevision uint64 `json:"applied_revision"`
	// HandledRevision is the highest revision the node finished handling,
	// whatever the outcome (0: none): it never applies a revision at or below
	// it, so whoever numbers revisions for the node starts above it.
	HandledRevision uint64 `json:"handled_revision,omitempty"`
	// Outcome is how the last apply ended; empty before the first apply.
	Outcome Outcome `json:"outcome,omitempty"`
	// LastProbe is the verdict of the last apply's probe call, when it made
	// one (e.g. trunk_works, auth_or_far_trunk).
	LastProbe string `json:"last_probe,omitempty"`
	// Trunk is the trunk's state as last seen.
	Trunk TrunkState `json:"trunk"`
	// Drift says whether a managed file differs from what the node wrote.
	Drift bool `json:"drift"`
	// DriftFiles names the files that drifted.
	DriftFiles []string `json:"drift_files,omitempty"`
	// Healthy is the node's overall verdict.
	Healthy bool `json:"healthy"`
	// Detail explains an unhealthy node, for people.
	Detail string `json:"detail,omitempty"`
	// Version is the agent's version.
	Version string `json:"version"`
	// At is when the node took this status (the event time).
	At time.Time `json:"at"`
}

// EventType returns TypeStatus.
func (Status) EventType() string { return TypeStatus }

// NodeID returns the node the status is of.
func (s Status) NodeID() string { return s.Node }

// EventID returns the event id, status-<node>-<at unix ns>.
func (s Status) EventID() string {
	return "status-" + s.Node + "-" + strconv.FormatInt(s.At.UnixNano(), 10)
}

// Validate returns nil when the status is well formed, and otherwise every
// problem joined, each wrapping ErrInvalidNode or ErrInvalidField.
func (s Status) Validate() error {
	var p problems
	if _, _, err := ParseNodeID(s.Node); err != nil {
		p.addErr(fmt.Errorf("node: %w", err))
	}
	if s.Outcome != "" {
		if err := s.Outcome.Validate(); err != nil {
			p.addErr(err)
		}
	}
	s.Trunk.validate(&p, "trunk")
	if len(s.DriftFiles) > 0 && !s.Drift {
		p.add(ErrInvalidField, "drift_files without drift")
	}
	for i, f := range s.DriftFiles {
		p.nonEmpty(fmt.Sprintf("drift_files[%d]", i), f)
	}
	p.nonEmpty("version", s.Version)
	if s.At.IsZero() {
		p.add(ErrInvalidField, "at is required")
	}
	return p.err()
}
