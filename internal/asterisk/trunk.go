// Package asterisk holds everything pbxfleet knows about Asterisk text: it renders
// the chan_sip peer, the pjsip wizard section and the dialplan of one trunk, and it
// parses the CLI output the agents read back. It is pure: no I/O, no clock, and
// of pbxfleet's packages it imports only the leaves trunkmodel and textclip. The facts it relies on are in docs/asterisk.md.
package asterisk

import "github.com/pbxfleet/pbxfleet/internal/trunkmodel"

// Scenario says where OMniLeads runs relative to the PBX; the vocabulary is
// trunkmodel's, shared with the wire.
type Scenario = trunkmodel.Scenario

// The three deployment scenarios.
const (
	ScenarioLAN    = trunkmodel.ScenarioLAN
	ScenarioCloud  = trunkmodel.ScenarioCloud
	ScenarioDocker = trunkmodel.ScenarioDocker
)

// Scenarios lists the valid scenarios in a fixed order.
var Scenarios = trunkmodel.Scenarios()

// AgentRouting says how the PBX reaches OMniLeads agents (trunkmodel's).
type AgentRouting = trunkmodel.AgentRouting

// The two ways the PBX can send calls to agents.
const (
	AgentRoutingPattern  = trunkmodel.AgentRoutingPattern
	AgentRoutingPerAgent = trunkmodel.AgentRoutingPerAgent
)

// DID is an OMniLeads inbound-route number reachable from the PBX.
type DID struct {
	// Number is what is sent over the trunk (the OML inbound route's DID).
	Number string
	// Extension is the local number dialled on the PBX; empty means Number itself.
	Extension string
}

// LocalNumber returns the number dialled on the PBX for this DID.
func (d DID) LocalNumber() string {
	if d.Extension != "" {
		return d.Extension
	}
	return d.Number
}

// Agent is an OMniLeads agent reachable from the PBX.
type Agent struct {
	// ID is the OML agent id (e.g. 1).
	ID string
	// SIPNumber is the agent's SIP number in OML (e.g. 1006).
	SIPNumber string
	// Name is informational only; it is written into a comment after validation.
	Name string
	// Extension is an optional local number on the PBX (per_agent routing).
	Extension string
}

// DialNumber returns the number OMniLeads expects for this agent: SIP number then id
// (1006 and 1 give 10061, docs/asterisk.md#calls-from-the-pbx-to-omnileads).
func (a Agent) DialNumber() string { return a.SIPNumber + a.ID }

// LocalNumber returns the number dialled on the PBX for this agent.
func (a Agent) LocalNumber() string {
	if a.Extension != "" {
		return a.Extension
	}
	return a.DialNumber()
}

// Trunk is everything needed to render both sides of one site's trunk. The planner
// builds it from the fleet spec; an agent rebuilds it from its desired-state event.
// Field comments name the Asterisk option each value ends up in.
type Trunk struct {
	Site     string
	Revision uint64
	Scenario Scenario

	// PBXAddress is the Issabel host (OML remote_hosts; the peer host= in docker).
	PBXAddress string
	// PBXPort is chan_sip's bind port (5060), OML remote_hosts port.
	PBXPort int
	// OMLAddress is the OMniLeads host (peer host= in lan and cloud).
	OMLAddress string
	// OMLTransport is the wizard transport= name, e.g. trunk-transport.
	OMLTransport string
	// OMLPort is the port OML's transport binds, the peer's port=.
	OMLPort int

	// PBXTrunkName is the chan_sip peer section ("Trunk Name"), e.g. omnileads;
	// it must equal OML's outbound_auth/username and endpoint/from_user (§2).
	PBXTrunkName string
	// OMLTrunkName is the wizard section name, e.g. issabel.
	OMLTrunkName string
	// PBXUser is the peer's defaultuser/fromuser = OML inbound_auth/username.
	PBXUser string
	// OMLUser is OML's outbound_auth/username and endpoint/from_user.
	OMLUser string
	// Secret is the one chan_sip secret = both OML auth passwords.
	Secret string

	// PBXCodecs is the peer's allow= list (after disallow=all).
	PBXCodecs []string
	// OMLCodecs is the wizard's endpoint/allow list.
	OMLCodecs []string
	// QualifyFrequency is OML's aor/qualify_frequency in seconds.
	QualifyFrequency int

	DIDs         []DID
	Agents       []Agent
	AgentRouting AgentRouting
	// AgentPattern is the PBX dialplan pattern used with AgentRoutingPattern, e.g. _1XXXX.
	AgentPattern string

	// ProbeNumber is dialled over the trunk to prove it without ringing anyone
	// (docs/asterisk.md#the-probe-call). It must exist on neither side.
	ProbeNumber string

	// OMLRoute is the OMniLeads outbound route to the PBX of an agent in objects
	// mode (docs/omnileads.md); nil means the defaults. It renders nothing into
	// the managed files.
	OMLRoute *OMLRoute
}

// NATFlags are the OML endpoint NAT options of a scenario (docs/asterisk.md#scenarios-and-ports).
type NATFlags struct {
	RTPSymmetric   bool
	ForceRport     bool
	RewriteContact bool
}

// NATFlagsFor returns the OML endpoint NAT options of a scenario.
func NATFlagsFor(s Scenario) NATFlags {
	switch s {
	case ScenarioCloud:
		return NATFlags{RTPSymmetric: true, ForceRport: true}
	case ScenarioDocker:
		return NATFlags{RTPSymmetric: true, ForceRport: true, RewriteContact: true}
	default:
		return NATFlags{}
	}
}

// PeerHost returns the chan_sip peer's host=: the OML address, except in the docker
// scenario where OML runs on the PBX host itself (docs/asterisk.md#scenarios-and-ports).
func (t Trunk) PeerHost() string {
	if t.Scenario == ScenarioDocker {
		return t.PBXAddress
	}
	return t.OMLAddress
}

// TransportProfile maps each scenario to the OML transport the trunk uses.
type TransportProfile struct {
	Name       string
	Transports map[Scenario]Transport
}

// Transport is one OML pjsip transport.
type Transport struct {
	Name string
	Port int
}

// The OMniLeads transport profiles (docs/asterisk.md#scenarios-and-ports): 1.x binds one transport per
// scenario, 2.x a single trunk-transport on 5060.
var (
	ProfileOML1 = TransportProfile{Name: "1.x", Transports: map[Scenario]Transport{
		ScenarioLAN:    {Name: "trunk-transport", Port: 5161},
		ScenarioCloud:  {Name: "trunk-nat-transport", Port: 5162},
		ScenarioDocker: {Name: "trunk-nat-docker-transport", Port: 5163},
	}}
	ProfileOML2 = TransportProfile{Name: "2.x", Transports: map[Scenario]Transport{
		ScenarioLAN:    {Name: "trunk-transport", Port: 5060},
		ScenarioCloud:  {Name: "trunk-transport", Port: 5060},
		ScenarioDocker: {Name: "trunk-transport", Port: 5060},
	}}
)

// ProfileByName returns the transport profile called name ("1.x" or "2.x") and
// false when there is none.
func ProfileByName(name string) (TransportProfile, bool) {
	switch name {
	case "", ProfileOML1.Name:
		return ProfileOML1, true
	case ProfileOML2.Name:
		return ProfileOML2, true
	}
	return TransportProfile{}, false
}
