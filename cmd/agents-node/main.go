// Command agents-node is the pbxfleet agent for an OMniLeads host (Asterisk with
// pjsip, where the contact-center agents work): it keeps the trunk's pjsip wizard
// section and probe dialplan the fleet wants.
package main

import (
	"github.com/pbxfleet/pbxfleet/internal/agentcmd"
	"github.com/pbxfleet/pbxfleet/internal/node"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { agentcmd.Main(node.OMLSide(), version) }
