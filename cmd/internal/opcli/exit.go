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

// ExitCode is the exit status of a command that returned err: ExitError's
// code, ExitInvalid for an unknown command, ExitFailed for any other error, 0
// without one.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if strings.HasPrefix(err.Error(), "unknown command ") {
		return ExitInvalid
	}
	return ExitFailed
}

// InvalidInput makes root's flag and argument refusals (a flag unknown or not
// parsing; too many or too few arguments) ExitInvalid, as the README
// documents, for root and every command under it added so far.
func InvalidInput(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return Invalid(err) })
	var wrap func(c *cobra.Command)
	wrap = func(c *cobra.Command) {
		if check := c.Args; check != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return Invalid(err)
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	for _, c := range root.Commands() {
		wrap(c)
	}
}

// Execute runs root until it returns or SIGINT/SIGTERM, prints an error as
// "name: error" on stderr and returns its ExitCode.
func Execute(root *cobra.Command, name string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
	}
	return ExitCode(err)
}
