// Command pbxlab is pbxfleet's lab: it runs simulated Asterisk hosts ("lab
// hosts") with real agents for demos, experiments and benchmarks. It is never
// installed on a site: the operator's CLI is pbxfleet, the agents pbx-node and
// agents-node. Called as "asterisk" (or "docker"), it is that client for the lab
// hosts of the compose fleet's containers.
package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "pbxlab",
		Short: "pbxfleet's lab: simulated Asterisk hosts with real agents (demo, bench, lab hosts)",
		Long: `pbxlab runs pbxfleet against lab hosts: in-process stand-ins for Asterisk that read the
files the agents write, speak real SIP on loopback and answer the agents' CLI commands
as Asterisk 20 does. They are never presented as Asterisk.

  pbxlab demo     a 6-site fleet rolled out, a bad change caught and rolled back
  pbxlab bench    1,000 or more sites in one process, with figures
  pbxlab lab      lab hosts for a fleet file, for agents started by hand`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newDemoCommand(), newBenchCommand(), newLabCommand())
	opcli.InvalidInput(root)
	return root
}

func main() {
	// Called as "asterisk" or "docker" (lab containers), act as that client.
	if handled, code := shimMain(os.Args); handled {
		os.Exit(code)
	}
	os.Exit(opcli.Execute(newRootCommand(), "pbxlab"))
}
