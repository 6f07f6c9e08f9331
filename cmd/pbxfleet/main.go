// Command pbxfleet is the operator's CLI: it plans, rolls out and watches the SIP
// trunk between OMniLeads and Issabel across a fleet of sites.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries a specific exit status out of a command (2 for invalid input).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "pbxfleet",
		Short: "Roll out and verify the OMniLeads <-> Issabel SIP trunk across a fleet of sites",
		Long: `pbxfleet configures the SIP trunk between each OMniLeads server (Asterisk, pjsip) and its
Issabel PBX (Asterisk, chan_sip) from one fleet file, rolls it out site by site over NATS
JetStream, and proves each trunk can carry a call (qualify plus a probe call), not just
that the two CLI checks of the manual procedure are green.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newPlanCommand(),
		newParseCommand(),
		newStatusCommand(),
		newServeCommand(),
		newRolloutCommand(),
		newDemoCommand(),
		newCredsCommand(),
		newBenchCommand(),
		newLabCommand(),
		newWebCommand(),
	)
	root.AddCommand(rolloutOpCommands()...)
	return root
}

func main() {
	// Called as "asterisk" or "docker" (lab containers), act as that client.
	if handled, code := shimMain(os.Args); handled {
		os.Exit(code)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCommand().ExecuteContext(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "pbxfleet:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(1)
}
