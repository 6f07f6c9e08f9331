// Package opcli holds what pbxfleet's commands share (pbxfleet, the operator
// CLI, and pbxlab, the lab, demo and bench): exit codes, the NATS connection
// flags, the embedded control plane and the rollout view.
package opcli

import "github.com/pbxfleet/pbxfleet/internal/textclip"

// Exit codes of every command.
const (
	// ExitFailed: the command ran and what it did failed (a rollout failed,
	// was rolled back or aborted; a node is unhealthy).
	ExitFailed = 1
	// ExitInvalid: what was typed or given is invalid (a flag, an argument,
	// a fleet file); nothing changed.
	ExitInvalid = 2
	// ExitPaused: the rollout paused (its failure budget was spent with
	// --on-failure pause).
	ExitPaused = 3
)

// ExitError carries a specific exit status out of a command.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Invalid wraps err as bad input (ExitInvalid).
func Invalid(err error) error { return &ExitError{Code: ExitInvalid, Err: err} }

// Clip caps a value echoed in an error at 64 bytes (at a rune boundary) and
// marks the cut with "…", so a huge argument cannot flood stderr.
func Clip(s string) string { return textclip.Value(s) }
