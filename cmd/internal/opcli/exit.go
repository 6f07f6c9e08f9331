// Package opcli holds what pbxfleet's commands share (pbxfleet, the operator
// CLI, and pbxlab, the lab, demo and bench): exit codes, the NATS connection
// flags, the embedded control plane and the rollout view.
package opcli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

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

// Execute runs root until it returns or SIGINT/SIGTERM, prints an error as
// "name: error" on stderr and returns the exit status (ExitError's code, 2
// for an unknown command, 1 for any other error, 0 without one).
func Execute(root *cobra.Command, name string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, name+":", err)
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if strings.HasPrefix(err.Error(), "unknown command ") {
		return ExitInvalid
	}
	return ExitFailed
}
