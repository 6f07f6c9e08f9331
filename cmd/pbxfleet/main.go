// Command pbxfleet is the operator's CLI: it plans, rolls out and watches the SIP
// trunk between OMniLeads and Issabel across a fleet of sites.
package main

import (
	"os"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

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
		newCredsCommand(),
		newWebCommand(),
	)
	root.AddCommand(rolloutOpCommands()...)
	// A flag or arguments that do not parse are bad input: exit 2, as
	// documented, like every other refusal of what was typed.
	opcli.InvalidInput(root)
	return root
}

func main() { os.Exit(opcli.Execute(newRootCommand(), "pbxfleet")) }
