// Command pbxfleet is the operator's CLI: it plans, rolls out and watches the SIP
// trunk between OMniLeads and Issabel across a fleet of sites.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"unicode/utf8"

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
	// A flag that does not parse (unknown, bad value) is bad input: exit 2, as
	// documented, like every other refusal of what was typed.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: 2, err: err} })
	// So are arguments a command does not take (too many, too few).
	var badArgs func(c *cobra.Command)
	badArgs = func(c *cobra.Command) {
		if check := c.Args; check != nil {
			c.Args = func(cmd *cobra.Command, args []string) error {
				if err := check(cmd, args); err != nil {
					return &exitError{code: 2, err: err}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			badArgs(sub)
		}
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
	for _, c := range root.Commands() {
		badArgs(c)
	}
	return root
}

// clipValue caps a value echoed in an error at 64 bytes (at a rune boundary)
// and marks the cut with "…", so a huge argument cannot flood stderr.
func clipValue(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
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
	if strings.HasPrefix(err.Error(), "unknown command ") {
		os.Exit(2)
	}
	os.Exit(1)
}
