// Package intent converts between the renderer's trunk model (asterisk.Trunk) and
// the trunk intent that crosses the wire (events.Trunk). The planner converts one
// way when it builds desired states; the node agents convert back before they
// render, so both render from exactly the same values. The conversion is pure and
// total: it validates nothing (asterisk.CheckTrunk and events.Desired.Validate do).
package intent

import (
	"slices"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
)

// ToEvent returns the wire intent of t. The revision is not part of the intent
// (events.Desired carries it), and the secret travels in plaintext in
// events.Trunk.Secret: sealing it for the receiving node is a later step that
// replaces Secret with SealedSecret. Slices are copied, so the result shares no
// memory with t.
func ToEvent(t asterisk.Trunk) events.Trunk {
	e := events.Trunk{
		Site:             t.Site,
		Scenario:         string(t.Scenario),
		PBXAddress:       t.PBXAddress,
		PBXPort:          t.PBXPort,
		OMLAddress:       t.OMLAddress,
		OMLTransport:     t.OMLTransport,
		OMLPort:          t.OMLPort,
		PBXTrunkName:     t.PBXTrunkName,
		OMLTrunkName:     t.OMLTrunkName,
		PBXUser:          t.PBXUser,
		OMLUser:          t.OMLUser,
		Secret:           t.Secret,
		PBXCodecs:        slices.Clone(t.PBXCodecs),
		OMLCodecs:        slices.Clone(t.OMLCodecs),
		QualifyFrequency: t.QualifyFrequency,
		AgentRouting:     string(t.AgentRouting),
		AgentPattern:     t.AgentPattern,
		ProbeNumber:      t.ProbeNumber,
	}
	if t.OMLRoute != nil {
		r := events.OMLRoute{Name: t.OMLRoute.Name, RingTime: t.OMLRoute.RingTime, DialOptions: t.OMLRoute.DialOptions,
			InboundCampaign: t.OMLRoute.InboundCampaign}
		for _, p := range t.OMLRoute.Patterns {
			r.Patterns = append(r.Patterns, events.DialPattern{Prefix: p.Prefix, Prepend: p.Prepend, Pattern: p.Pattern})
		}
		e.OMLRoute = &r
	}
	if len(t.DIDs) > 0 {
		e.DIDs = make([]events.DID, len(t.DIDs))
		for i, d := range t.DIDs {
			e.DIDs[i] = events.DID{Number: d.Number, Extension: d.Extension}
		}
	}
	if len(t.Agents) > 0 {
		e.Agents = make([]events.Agent, len(t.Agents))
		for i, a := range t.Agents {
			e.Agents[i] = events.Agent{ID: a.ID, SIPNumber: a.SIPNumber, Name: a.Name, Extension: a.Extension}
		}
	}
	return e
}

// ToTrunk returns the renderer's model of the wire intent e, with Revision 0: the
// caller sets it from events.Desired.Revision. It copies Secret as is; when e
// carries a SealedSecret instead, the caller unseals it and sets Secret before
// rendering (an empty Secret fails asterisk.CheckTrunk, so a forgotten unseal can
// never render a trunk without a password). Slices are copied.
func ToTrunk(e events.Trunk) asterisk.Trunk {
	t := asterisk.Trunk{
		Site:             e.Site,
		Scenario:         asterisk.Scenario(e.Scenario),
		PBXAddress:       e.PBXAddress,
		PBXPort:          e.PBXPort,
		OMLAddress:       e.OMLAddress,
		OMLTransport:     e.OMLTransport,
		OMLPort:          e.OMLPort,
		PBXTrunkName:     e.PBXTrunkName,
		OMLTrunkName:     e.OMLTrunkName,
		PBXUser:          e.PBXUser,
		OMLUser:          e.OMLUser,
		Secret:           e.Secret,
		PBXCodecs:        slices.Clone(e.PBXCodecs),
		OMLCodecs:        slices.Clone(e.OMLCodecs),
		QualifyFrequency: e.QualifyFrequency,
		AgentRouting:     asterisk.AgentRouting(e.AgentRouting),
		AgentPattern:     e.AgentPattern,
		ProbeNumber:      e.ProbeNumber,
	}
	if e.OMLRoute != nil {
		r := asterisk.OMLRoute{Name: e.OMLRoute.Name, RingTime: e.OMLRoute.RingTime, DialOptions: e.OMLRoute.DialOptions,
			InboundCampaign: e.OMLRoute.InboundCampaign}
		for _, p := range e.OMLRoute.Patterns {
			r.Patterns = append(r.Patterns, asterisk.DialPattern{Prefix: p.Prefix, Prepend: p.Prepend, Pattern: p.Pattern})
		}
		t.OMLRoute = &r
	}
	if len(e.DIDs) > 0 {
		t.DIDs = make([]asterisk.DID, len(e.DIDs))
		for i, d := range e.DIDs {
			t.DIDs[i] = asterisk.DID{Number: d.Number, Extension: d.Extension}
		}
	}
	if len(e.Agents) > 0 {
		t.Agents = make([]asterisk.Agent, len(e.Agents))
		for i, a := range e.Agents {
			t.Agents[i] = asterisk.Agent{ID: a.ID, SIPNumber: a.SIPNumber, Name: a.Name, Extension: a.Extension}
		}
	}
	return t
}
