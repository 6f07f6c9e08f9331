package events

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/pbxfleet/pbxfleet/internal/textclip"
	"github.com/pbxfleet/pbxfleet/internal/trunkmodel"
)

// Scenarios: where OMniLeads runs relative to the PBX (docs/asterisk.md#scenarios-and-ports);
// the vocabulary is trunkmodel's, shared with the renderer.
const (
	// ScenarioLAN is OMniLeads on its own host on the PBX's LAN.
	ScenarioLAN = string(trunkmodel.ScenarioLAN)
	// ScenarioCloud is OMniLeads in the cloud, the PBX on a LAN behind NAT.
	ScenarioCloud = string(trunkmodel.ScenarioCloud)
	// ScenarioDocker is OMniLeads in Docker on the PBX host itself.
	ScenarioDocker = string(trunkmodel.ScenarioDocker)
)

// MaxRevision is the highest revision: 2^53-1, the largest integer every JSON
// reader holds exactly. A desired state above it is refused (a node that
// accepted 2^63-1 would refuse everything after it), so it cannot wedge a node.
const MaxRevision = 1<<53 - 1

// When a node places its probe call (Desired.Probe).
const (
	// ProbeNow: once, right after the node's checks pass (a desired state put by
	// hand, `check`).
	ProbeNow = ""
	// ProbeOnOrder: once, when the orchestrator sends the node a ProbeOrder; the
	// node reports OutcomeAwaitingProbe until then.
	ProbeOnOrder = "on_order"
)

// Agent routings: how the PBX reaches OMniLeads agents (trunkmodel's).
const (
	// AgentRoutingPattern is one dialplan pattern (AgentPattern) for every agent.
	AgentRoutingPattern = string(trunkmodel.AgentRoutingPattern)
	// AgentRoutingPerAgent is one custom extension per agent.
	AgentRoutingPerAgent = string(trunkmodel.AgentRoutingPerAgent)
)

// Desired is one node's desired state, the data of a pbxfleet.desired.v1 event
// kept in BucketDesired under the node's id. The orchestrator writes it; only that
// node reads it.
type Desired struct {
	// Node is the node id, <site>.<role>; it equals the KV key and the event subject.
	Node string `json:"node"`
	// Revision orders the desired states of a node; it is never 0, and a node never
	// applies a revision older than the one it has.
	Revision uint64 `json:"revision"`
	// Rollout is the id of the rollout that put this state, if any.
	Rollout string `json:"rollout,omitempty"`
	// PlanHash identifies the plan this state comes from, if any.
	PlanHash string `json:"plan_hash,omitempty"`
	// Probe says when the node places its probe call: ProbeNow (empty) right
	// after its checks pass, or ProbeOnOrder when the orchestrator says so, once
	// every node of the site has applied (a probe against a far side that has not
	// applied yet fails, and each failure is an authentication failure the far
	// side's fail2ban counts).
	Probe string `json:"probe,omitempty"`
	// Trunk is the typed intent for the site's trunk.
	Trunk Trunk `json:"trunk"`
}

// Trunk is the typed intent for one site's trunk: values, never rendered text and
// never commands. Both nodes of a site get the same Trunk; each renders its side.
// docs/asterisk.md#how-the-two-sides-relate says how the fields relate.
type Trunk struct {
	// Site is the site name; it equals the site of the node id.
	Site string `json:"site"`
	// Scenario is ScenarioLAN, ScenarioCloud or ScenarioDocker.
	Scenario string `json:"scenario"`
	// PBXAddress is the Issabel host's address.
	PBXAddress string `json:"pbx_address"`
	// PBXPort is chan_sip's bind port (OML's remote_hosts port).
	PBXPort int `json:"pbx_port"`
	// OMLAddress is the OMniLeads host's address.
	OMLAddress string `json:"oml_address"`
	// OMLTransport is the pjsip wizard's transport= name.
	OMLTransport string `json:"oml_transport"`
	// OMLPort is the port OML's transport binds (the chan_sip peer's port=).
	OMLPort int `json:"oml_port"`
	// PBXTrunkName is the chan_sip peer's section name.
	PBXTrunkName string `json:"pbx_trunk_name"`
	// OMLTrunkName is the pjsip wizard's section name.
	OMLTrunkName string `json:"oml_trunk_name"`
	// PBXUser is the peer's defaultuser (OML's inbound_auth/username).
	PBXUser string `json:"pbx_user"`
	// OMLUser is OML's outbound_auth/username.
	OMLUser string `json:"oml_user"`
	// Secret is the trunk secret in plaintext, set only when the operator did not
	// enable sealing. Exactly one of Secret and SealedSecret is set.
	Secret string `json:"secret,omitempty"`
	// SealedSecret is the secret sealed to the receiving node's curve key, in
	// standard base64.
	SealedSecret string `json:"sealed_secret,omitempty"`
	// SealedBy is the sender's public curve key; set exactly when SealedSecret is.
	SealedBy string `json:"sealed_by,omitempty"`
	// PBXCodecs is the chan_sip peer's allow= list.
	PBXCodecs []string `json:"pbx_codecs"`
	// OMLCodecs is the wizard's endpoint/allow list.
	OMLCodecs []string `json:"oml_codecs"`
	// QualifyFrequency is OML's aor/qualify_frequency in seconds.
	QualifyFrequency int `json:"qualify_frequency"`
	// DIDs are the OML inbound routes the PBX reaches over the trunk.
	DIDs []DID `json:"dids,omitempty"`
	// Agents are the OML agents the PBX reaches over the trunk.
	Agents []Agent `json:"agents,omitempty"`
	// AgentRouting is AgentRoutingPattern or AgentRoutingPerAgent; required when
	// there are agents.
	AgentRouting string `json:"agent_routing,omitempty"`
	// AgentPattern is the PBX dialplan pattern of AgentRoutingPattern, e.g. _1XXXX.
	AgentPattern string `json:"agent_pattern,omitempty"`
	// ProbeNumber is dialled over the trunk to prove it without ringing anyone
	// (docs/asterisk.md#the-probe-call).
	ProbeNumber string `json:"probe_number,omitempty"`
	// OMLRoute is the OMniLeads outbound route to the PBX that an agent in
	// objects mode creates (docs/omnileads.md); nil means the defaults
	// (DefaultOMLRoute): every number to the PBX.
	OMLRoute *OMLRoute `json:"oml_route,omitempty"`
}

// OMLRoute is an OMniLeads outbound route (RutaSaliente) whose one trunk is the
// site's trunk, and the inbound routes' optional destination.
type OMLRoute struct {
	// Name is the route's name in OMniLeads (^\w+$).
	Name string `json:"name"`
	// RingTime is the dial timeout in seconds (1-3600).
	RingTime int `json:"ring_time"`
	// DialOptions are Asterisk Dial() options (OMniLeads allows HhKkRrL():MATtWw).
	DialOptions string `json:"dial_options"`
	// Patterns are the route's dial patterns, in order; at least one.
	Patterns []DialPattern `json:"patterns"`
	// InboundCampaign, when set, names the OMniLeads inbound campaign an inbound
	// route is created for, for each DID that has none; empty means the DIDs'
	// inbound routes are only checked.
	InboundCampaign string `json:"inbound_campaign,omitempty"`
}

// DialPattern is one dial pattern of an OMniLeads outbound route: a number the
// agent dials that starts with Prefix and matches Pattern (Asterisk pattern
// syntax without the leading _) is sent without Prefix and with Prepend added.
type DialPattern struct {
	// Prefix is stripped before dialling (digits, +, *, #); may be empty.
	Prefix string `json:"prefix,omitempty"`
	// Prepend is added before dialling (digits, +, *, #); may be empty.
	Prepend string `json:"prepend,omitempty"`
	// Pattern is the match pattern (digits, X, Z, N, [], ., -, +, *, #).
	Pattern string `json:"pattern"`
}

// DefaultOMLRoute is the outbound route of a site whose fleet file names none:
// "pbxfleet_<oml trunk name>", every number (pattern X.) to the PBX unchanged,
// OMniLeads' own defaults for ring time (25 s) and dial options (Tt).
func DefaultOMLRoute(omlTrunkName string) OMLRoute {
	return OMLRoute{Name: trunkmodel.DefaultOMLRouteName(omlTrunkName), RingTime: trunkmodel.DefaultOMLRingTime,
		DialOptions: trunkmodel.DefaultOMLDialOptions, Patterns: []DialPattern{{Pattern: trunkmodel.DefaultOMLPattern}}}
}

// Route returns t's outbound route: OMLRoute, or the defaults when it is nil.
func (t Trunk) Route() OMLRoute {
	if t.OMLRoute != nil {
		return *t.OMLRoute
	}
	return DefaultOMLRoute(t.OMLTrunkName)
}

// DID is an OMniLeads inbound-route number reachable from the PBX.
type DID struct {
	// Number is the DID sent over the trunk.
	Number string `json:"number"`
	// Extension is the local number dialled on the PBX; empty means Number.
	Extension string `json:"extension,omitempty"`
}

// Agent is an OMniLeads agent reachable from the PBX.
type Agent struct {
	// ID is the OML agent id.
	ID string `json:"id"`
	// SIPNumber is the agent's SIP number in OML.
	SIPNumber string `json:"sip_number"`
	// Name is informational.
	Name string `json:"name,omitempty"`
	// Extension is an optional local number on the PBX (per_agent routing).
	Extension string `json:"extension,omitempty"`
}

// EventType returns TypeDesired.
func (Desired) EventType() string { return TypeDesired }

// NodeID returns the node the desired state is for.
func (d Desired) NodeID() string { return d.Node }

// EventID returns the deterministic event id, desired-<node>-<revision>, so a
// resend of the same revision deduplicates.
func (d Desired) EventID() string {
	return "desired-" + d.Node + "-" + strconv.FormatUint(d.Revision, 10)
}

// Validate returns nil when the desired state is well formed, and otherwise every
// problem joined, each wrapping ErrInvalidNode, ErrInvalidRevision,
// ErrSubjectMismatch or ErrInvalidField. It checks shapes only; whether a value
// is safe for Asterisk is internal/asterisk's call.
func (d Desired) Validate() error {
	var p problems
	site, _, err := ParseNodeID(d.Node)
	if err != nil {
		p.addErr(fmt.Errorf("node: %w", err))
	}
	if d.Revision == 0 {
		p.add(ErrInvalidRevision, "revision must be at least 1")
	}
	if d.Revision > MaxRevision {
		p.add(ErrInvalidRevision, "revision %d is above %d, the highest pbxfleet numbers", d.Revision, uint64(MaxRevision))
	}
	if d.Probe != ProbeNow && d.Probe != ProbeOnOrder {
		p.add(ErrInvalidField, "probe %q is not empty or %s", textclip.Value(d.Probe), ProbeOnOrder)
	}
	d.Trunk.validate(&p, site)
	return p.err()
}

func (t Trunk) validate(p *problems, nodeSite string) {
	if err := ValidateSite(t.Site); err != nil {
		p.addErr(fmt.Errorf("trunk.site: %w", err))
	} else if nodeSite != "" && t.Site != nodeSite {
		p.add(ErrSubjectMismatch, "trunk.site %q is not the node's site %q", t.Site, nodeSite)
	}
	switch t.Scenario {
	case ScenarioLAN, ScenarioCloud, ScenarioDocker:
	default:
		p.add(ErrInvalidField, "trunk.scenario %q is not %s, %s or %s", textclip.Value(t.Scenario), ScenarioLAN, ScenarioCloud, ScenarioDocker)
	}
	p.nonEmpty("trunk.pbx_address", t.PBXAddress)
	p.port("trunk.pbx_port", t.PBXPort)
	p.nonEmpty("trunk.oml_address", t.OMLAddress)
	p.nonEmpty("trunk.oml_transport", t.OMLTransport)
	p.port("trunk.oml_port", t.OMLPort)
	p.nonEmpty("trunk.pbx_trunk_name", t.PBXTrunkName)
	p.nonEmpty("trunk.oml_trunk_name", t.OMLTrunkName)
	p.nonEmpty("trunk.pbx_user", t.PBXUser)
	p.nonEmpty("trunk.oml_user", t.OMLUser)

	// Sealing is all or nothing: a sealed secret never travels with the plaintext.
	switch {
	case t.Secret != "" && (t.SealedSecret != "" || t.SealedBy != ""):
		p.add(ErrInvalidField, "trunk.secret and trunk.sealed_secret are exclusive")
	case t.Secret == "" && t.SealedSecret == "":
		p.add(ErrInvalidField, "trunk.secret or trunk.sealed_secret is required")
	case t.SealedSecret != "" && t.SealedBy == "":
		p.add(ErrInvalidField, "trunk.sealed_by is required with trunk.sealed_secret")
	case t.SealedSecret == "" && t.SealedBy != "":
		p.add(ErrInvalidField, "trunk.sealed_by is set without trunk.sealed_secret")
	}
	if t.SealedSecret != "" {
		if _, err := base64.StdEncoding.DecodeString(t.SealedSecret); err != nil {
			p.add(ErrInvalidField, "trunk.sealed_secret is not standard base64")
		}
	}

	p.list("trunk.pbx_codecs", t.PBXCodecs)
	p.list("trunk.oml_codecs", t.OMLCodecs)
	if t.QualifyFrequency < 0 {
		p.add(ErrInvalidField, "trunk.qualify_frequency %d is negative", t.QualifyFrequency)
	}
	for i, did := range t.DIDs {
		p.nonEmpty(fmt.Sprintf("trunk.dids[%d].number", i), did.Number)
	}
	for i, a := range t.Agents {
		p.nonEmpty(fmt.Sprintf("trunk.agents[%d].id", i), a.ID)
		p.nonEmpty(fmt.Sprintf("trunk.agents[%d].sip_number", i), a.SIPNumber)
	}
	if t.OMLRoute != nil {
		t.OMLRoute.validate(p)
	}
	switch t.AgentRouting {
	case AgentRoutingPattern:
		p.nonEmpty("trunk.agent_pattern", t.AgentPattern)
	case AgentRoutingPerAgent:
	case "":
		if len(t.Agents) > 0 {
			p.add(ErrInvalidField, "trunk.agent_routing is required with agents")
		}
	default:
		p.add(ErrInvalidField, "trunk.agent_routing %q is not %s or %s", textclip.Value(t.AgentRouting), AgentRoutingPattern, AgentRoutingPerAgent)
	}
}

// An OMniLeads outbound route's fields follow OMniLeads' own validators and
// field lengths (trunkmodel, shared with the renderer's CheckOMLRoute; and
// events/schema/desired.v1.json).
func (r OMLRoute) validate(p *problems) {
	if !trunkmodel.OMLName(r.Name) {
		p.add(ErrInvalidField, "trunk.oml_route.name %q is not 1-%d letters, digits and _", textclip.Value(r.Name), trunkmodel.MaxOMLName)
	}
	if r.RingTime < trunkmodel.MinOMLRingTime || r.RingTime > trunkmodel.MaxOMLRingTime {
		p.add(ErrInvalidField, "trunk.oml_route.ring_time %d is out of range (%d-%d)", r.RingTime, trunkmodel.MinOMLRingTime, trunkmodel.MaxOMLRingTime)
	}
	if !trunkmodel.OMLDialOptions(r.DialOptions) {
		p.add(ErrInvalidField, "trunk.oml_route.dial_options %q is not 1-%d of HhKkRrL():MATtWw", textclip.Value(r.DialOptions), trunkmodel.MaxOMLDialOptions)
	}
	if len(r.Patterns) == 0 {
		p.add(ErrInvalidField, "trunk.oml_route.patterns needs at least one entry")
	}
	for i, dp := range r.Patterns {
		if dp.Prefix != "" && !trunkmodel.OMLDigits(dp.Prefix) {
			p.add(ErrInvalidField, "trunk.oml_route.patterns[%d].prefix %q is not up to %d digits, +, * or #", i, textclip.Value(dp.Prefix), trunkmodel.MaxOMLDigits)
		}
		if dp.Prepend != "" && !trunkmodel.OMLDigits(dp.Prepend) {
			p.add(ErrInvalidField, "trunk.oml_route.patterns[%d].prepend %q is not up to %d digits, +, * or #", i, textclip.Value(dp.Prepend), trunkmodel.MaxOMLDigits)
		}
		if !trunkmodel.OMLMatchPattern(dp.Pattern) {
			p.add(ErrInvalidField, "trunk.oml_route.patterns[%d].pattern %q is not a dial pattern (up to %d characters)", i, textclip.Value(dp.Pattern), trunkmodel.MaxOMLPattern)
		}
	}
	if r.InboundCampaign != "" && !trunkmodel.OMLName(r.InboundCampaign) {
		p.add(ErrInvalidField, "trunk.oml_route.inbound_campaign %q is not 1-%d letters, digits and _", textclip.Value(r.InboundCampaign), trunkmodel.MaxOMLName)
	}
}
