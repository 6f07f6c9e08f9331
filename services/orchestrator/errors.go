package orchestrator

import "errors"

// Errors returned by this package, always wrapped with the operation, the rollout
// and, when known, the site and node; match them with errors.Is.
var (
	// ErrInvalidPlan means a plan is unusable: no targets, a bad or repeated site,
	// a bad role, or an intent that is not a valid desired state.
	ErrInvalidPlan = errors.New("invalid plan")
	// ErrInvalidStrategy means a strategy field is out of range or two fields
	// exclude each other.
	ErrInvalidStrategy = errors.New("invalid strategy")
	// ErrRolloutActive means another rollout holds the rollout lock; the error
	// names its id.
	ErrRolloutActive = errors.New("another rollout is active")
	// ErrRolloutNotFound means no rollout has the given id, or there is no
	// current or last rollout.
	ErrRolloutNotFound = errors.New("rollout not found")
	// ErrInvalidPhase means an operation does not apply to the rollout's phase,
	// e.g. resuming a rollout that already succeeded.
	ErrInvalidPhase = errors.New("operation not allowed in this phase")
	// ErrBadDesired means a node's current desired state could not be decoded, so
	// its next revision cannot be computed.
	ErrBadDesired = errors.New("current desired state unreadable")
	// ErrCorruptState means a persisted rollout or plan record could not be decoded.
	ErrCorruptState = errors.New("rollout state unreadable")
	// ErrConflict means the rollout state kept changing under a compare-and-set
	// update and the operation gave up.
	ErrConflict = errors.New("rollout state kept changing")
	// ErrBadRequest means a service request body does not decode.
	ErrBadRequest = errors.New("bad request")
	// ErrRevisionsExhausted means a node is at events.MaxRevision already.
	ErrRevisionsExhausted = errors.New("no revision left to number")
)
