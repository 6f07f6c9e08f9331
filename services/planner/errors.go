package planner

import "errors"

// Sentinel errors of the package, matched with errors.Is.
var (
	// ErrInvalidSpec is matched by every *ValidationError: the fleet file does not
	// decode, or a value in it is unsafe, missing or contradicts another. Nothing
	// is planned from an invalid spec.
	ErrInvalidSpec = errors.New("invalid fleet spec")
	// ErrUnknownSite means a site asked for by id (Spec.Select) is not in the spec.
	ErrUnknownSite = errors.New("unknown site")
	// ErrRelationBroken means a rendered pair of files breaks a relation of
	// docs/asterisk.md#how-the-two-sides-relate. Validation makes this impossible for a valid spec, so it
	// signals a renderer bug; the plan is refused rather than published.
	ErrRelationBroken = errors.New("trunk relation broken")
	// ErrBadCurrent means the current desired state handed to BuildPlan is not
	// usable: a node id that is not <site>.<role>, or a payload for another node.
	ErrBadCurrent = errors.New("bad current desired state")
)
