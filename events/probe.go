package events

import (
	"fmt"

	"github.com/pbxfleet/pbxfleet/internal/strictjson"
	"github.com/pbxfleet/pbxfleet/internal/textclip"
)

// Probe order actions.
const (
	// ProbeActionProbe: place the probe call now (every node of the site has
	// applied the revisions the rollout put).
	ProbeActionProbe = "probe"
	// ProbeActionCancel: do not probe; the far side failed its apply, so the
	// node rolls back with Reason.
	ProbeActionCancel = "cancel"
)

// ProbeOrder is the body of a request to a node's probe endpoint. It names the
// revision it is for, so a node acts only on the order for the revision it is
// awaiting a probe for; anything else is answered and ignored.
type ProbeOrder struct {
	// Rollout and Revision name the desired state the order is for (Rollout is
	// empty for a desired state put outside any rollout).
	Rollout  string `json:"rollout"`
	Revision uint64 `json:"revision"`
	// Action is ProbeActionProbe or ProbeActionCancel.
	Action string `json:"action"`
	// Reason says why a cancel (for the node's result); at most 400 bytes.
	Reason string `json:"reason,omitempty"`
}

// maxProbeReason bounds ProbeOrder.Reason.
const maxProbeReason = 400

// ProbeAnswer is a node's answer to a probe order.
type ProbeAnswer struct {
	// Accepted says the node was awaiting this revision and acts on the order.
	Accepted bool `json:"accepted"`
	// Done says the node already finished this revision (an order sent again
	// after a lost answer): nothing more to do.
	Done bool `json:"done,omitempty"`
	// Detail says what the node is doing, for people.
	Detail string `json:"detail,omitempty"`
}

// DecodeProbeOrder decodes a probe order strictly: one JSON object with exactly
// the known fields, a revision, a rollout and a known action. Anything else (an
// empty body, a JetStream acknowledgement or API answer published to the
// endpoint's subject) is an error wrapping ErrInvalidField (ErrInvalidRevision
// for a missing revision): a node acts only on a well-formed order.
func DecodeProbeOrder(data []byte) (ProbeOrder, error) {
	var o ProbeOrder
	if err := strictjson.Unmarshal(data, &o); err != nil {
		return ProbeOrder{}, fmt.Errorf("%w: probe order: %w", ErrInvalidField, err)
	}
	var p problems
	if o.Revision == 0 {
		p.add(ErrInvalidRevision, "revision must be at least 1")
	}
	if o.Action != ProbeActionProbe && o.Action != ProbeActionCancel {
		p.add(ErrInvalidField, "action %q is not %s or %s", textclip.Value(o.Action), ProbeActionProbe, ProbeActionCancel)
	}
	if len(o.Reason) > maxProbeReason {
		p.add(ErrInvalidField, "reason is longer than %d bytes", maxProbeReason)
	}
	if err := p.err(); err != nil {
		return ProbeOrder{}, fmt.Errorf("probe order: %w", err)
	}
	return o, nil
}
