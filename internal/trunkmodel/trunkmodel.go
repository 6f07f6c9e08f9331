// Package trunkmodel is the vocabulary of one trunk that the wire (events) and
// the renderer (internal/asterisk) share: the scenarios, the agent routings,
// the grammar of a site name and the codec names Asterisk knows. It is a leaf:
// it imports nothing of pbxfleet's, so both sides name these things once.
package trunkmodel

import (
	"fmt"
	"regexp"
)

// Scenario says where OMniLeads runs relative to the PBX (docs/asterisk.md#scenarios-and-ports).
type Scenario string

// The three deployment scenarios.
const (
	// ScenarioLAN is OMniLeads on its own host on the PBX's LAN.
	ScenarioLAN Scenario = "lan"
	// ScenarioCloud is OMniLeads in the cloud, the PBX on a LAN behind NAT.
	ScenarioCloud Scenario = "cloud"
	// ScenarioDocker is OMniLeads in Docker on the PBX host itself.
	ScenarioDocker Scenario = "docker"
)

// Scenarios lists the valid scenarios in a fixed order.
func Scenarios() []Scenario { return []Scenario{ScenarioLAN, ScenarioCloud, ScenarioDocker} }

// AgentRouting says how the PBX reaches OMniLeads agents (docs/asterisk.md#calls-from-the-pbx-to-omnileads).
type AgentRouting string

// The two ways the PBX can send calls to agents.
const (
	// AgentRoutingPattern is one dialplan pattern that sends every agent number over the trunk.
	AgentRoutingPattern AgentRouting = "pattern"
	// AgentRoutingPerAgent is one custom extension per agent.
	AgentRoutingPerAgent AgentRouting = "per_agent"
)

// MaxSiteLen is the longest site name (a NATS subject token and KV key part).
const MaxSiteLen = 63

// SiteProblem says what is wrong with site as a site name, "" when it is one:
// 1 to 63 characters of a-z, 0-9, _ and -.
func SiteProblem(site string) string {
	if site == "" || len(site) > MaxSiteLen {
		return fmt.Sprintf("must be 1 to %d characters", MaxSiteLen)
	}
	for _, c := range site {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return "may contain only a-z, 0-9, _ and -"
		}
	}
	return ""
}

// AudioCodec reports whether v is an audio codec name of Asterisk 13 to 20
// (main/codec_builtin.c and the opus/silk/codec2 modules), exactly and in
// lower case: a name Asterisk does not know is dropped from allow= with a
// warning, leaving a trunk with fewer codecs than planned.
func AudioCodec(v string) bool {
	switch v {
	case "ulaw", "alaw", "gsm", "g726", "g726aal2", "adpcm", "lpc10", "g729", "g723",
		"speex", "speex16", "speex32", "ilbc", "g722", "siren7", "siren14", "g719",
		"opus", "silk", "silk8", "silk12", "silk16", "silk24", "codec2", "testlaw",
		"slin", "slin12", "slin16", "slin24", "slin32", "slin44", "slin48", "slin96", "slin192":
		return true
	}
	return false
}

// OMniLeads' own validators of an outbound route's fields
// (configuracion_telefonia_app/models.py, release 2.6.3), with the lengths of
// their model fields: a value the wire accepts must be one OMniLeads stores.
var (
	omlNameRE    = regexp.MustCompile(`^\w+$`)
	omlDialOptRE = regexp.MustCompile(`^[HhKkRrL():MATtWw]+$`)
	omlDigitsRE  = regexp.MustCompile(`^[+*#0-9]+$`)
	omlMatchRE   = regexp.MustCompile(`^[-.+*#0-9\[\]XZN]+$`)
)

// The limits of an OMniLeads outbound route's fields.
const (
	MaxOMLName        = 128
	MaxOMLDialOptions = 512
	MaxOMLDigits      = 32 // a pattern's prefix or prepend
	MaxOMLPattern     = 100
	MinOMLRingTime    = 1
	MaxOMLRingTime    = 3600
)

// OMLName reports whether v is an OMniLeads object name (a route, a campaign):
// 1 to 128 letters, digits and _.
func OMLName(v string) bool { return len(v) <= MaxOMLName && omlNameRE.MatchString(v) }

// OMLDialOptions reports whether v is a route's dial options: up to 512 of
// HhKkRrL():MATtWw.
func OMLDialOptions(v string) bool {
	return len(v) <= MaxOMLDialOptions && omlDialOptRE.MatchString(v)
}

// OMLDigits reports whether v is a dial pattern's prefix or prepend: up to 32
// digits, +, * and #.
func OMLDigits(v string) bool { return len(v) <= MaxOMLDigits && omlDigitsRE.MatchString(v) }

// OMLMatchPattern reports whether v is a dial pattern's match: up to 100 of
// digits, X, Z, N, [ ], ., -, +, * and #.
func OMLMatchPattern(v string) bool { return len(v) <= MaxOMLPattern && omlMatchRE.MatchString(v) }

// The outbound route a site gets when its fleet file names none: OMniLeads'
// own defaults for ring time and dial options, every number (X.) to the PBX
// unchanged, named after the OMniLeads trunk.
const (
	DefaultOMLRingTime    = 25
	DefaultOMLDialOptions = "Tt"
	DefaultOMLPattern     = "X."
)

// DefaultOMLRouteName is the name of that route for the OMniLeads trunk named
// omlTrunkName.
func DefaultOMLRouteName(omlTrunkName string) string { return "pbxfleet_" + omlTrunkName }
