// Command pbx-node is the pbxfleet agent for an Issabel PBX (Asterisk with
// chan_sip): it keeps the trunk peer and custom extensions the fleet wants.
package main

import (
	"github.com/pbxfleet/pbxfleet/internal/agentcmd"
	"github.com/pbxfleet/pbxfleet/internal/node"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { agentcmd.Main(node.PBXSide(), version) }
