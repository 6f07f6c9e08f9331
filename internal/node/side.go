package node

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
)

// Side is what differs between the Issabel agent and the OMniLeads agent: which
// files it renders, how it reloads, and how it reads its trunk's state. The two
// sides are values of this struct (PBXSide, OMLSide); the runtime is shared.
type Side struct {
	// Role is events.RolePBX or events.RoleOML.
	Role string
	// Program names the agent binary in generated headers and logs.
	Program string
	// Reloads are run in order after writing; each must print its success text.
	Reloads []string
	// ListCommand lists every trunk with its qualify state.
	ListCommand string

	// forceQualify says the side asks for a qualify before reading the state
	// (res_pjsip); chan_sip's is never forced (see checkQualify).
	forceQualify bool
	// objectEvidence keeps the lines of the show command that prove the object.
	objectEvidence func(out string) string

	render      func(t asterisk.Trunk, f FileNames) (asterisk.Rendered, error)
	trunkName   func(t events.Trunk) string
	showCommand func(name string) string
	qualify     func(name string) string
	// parseShow reads the show command's answer; marker is what marks the
	// object's revision (chan_sip's description=), "" where there is none.
	parseShow func(out []byte) (marker string, err error)
	// wantMarker is the marker of revision rev, "" when the side has none.
	wantMarker func(rev uint64) string
	trunkState func(out []byte, name string) (events.TrunkState, bool, error)
	// dialplan lists the contexts and extensions the managed dialplan must hold.
	dialplan func(t events.Trunk) map[string][]string
}

// PBXSide returns the Issabel (chan_sip) side (docs/asterisk.md#where-the-files-go, #reloads-and-cli-replies).
func PBXSide() Side {
	return Side{
		Role:        events.RolePBX,
		Program:     "pbx-node",
		Reloads:     []string{"sip reload", "dialplan reload"},
		ListCommand: "sip show peers",
		objectEvidence: func(out string) string {
			// Description carries the revision mark the check waited for.
			return keyLines(out, "* Name", "Description", "Context", "Addr->IP", "Def. Username", "Codecs", "Status", "Qualify Freq")
		},
		render: func(t asterisk.Trunk, f FileNames) (asterisk.Rendered, error) {
			names := asterisk.DefaultPBXFiles()
			override(&names.Peer, f.Trunk)
			override(&names.Dialplan, f.Dialplan)
			override(&names.SIPParent, f.TrunkParent)
			override(&names.ExtensionsParent, f.DialplanParent)
			return asterisk.RenderPBX(t, names)
		},
		trunkName:   func(t events.Trunk) string { return t.PBXTrunkName },
		showCommand: func(name string) string { return "sip show peer " + name },
		qualify:     func(name string) string { return "sip qualify peer " + name },
		parseShow: func(out []byte) (string, error) {
			p, err := asterisk.ParsePeer(out)
			return p.Description, err
		},
		wantMarker: asterisk.PeerDescription,
		trunkState: func(out []byte, name string) (events.TrunkState, bool, error) {
			peers, err := asterisk.ParsePeers(out)
			if err != nil {
				return events.TrunkState{}, false, err
			}
			p, ok := asterisk.FindPeer(peers, name)
			if !ok {
				return events.TrunkState{State: "missing"}, false, fmt.Errorf("peer %s: %w", name, asterisk.ErrNotFound)
			}
			st := events.TrunkState{State: string(p.Status), Reachable: p.Reachable()}
			if p.HasLatency {
				st.RTTMS = float64(p.LatencyMS)
			}
			return st, p.Status.Pending(), nil
		},
		dialplan: func(t events.Trunk) map[string][]string {
			custom := []string{t.ProbeNumber}
			for _, d := range t.DIDs {
				custom = append(custom, asterisk.DID{Number: d.Number, Extension: d.Extension}.LocalNumber())
			}
			if t.AgentRouting == string(asterisk.AgentRoutingPerAgent) {
				for _, a := range t.Agents {
					custom = append(custom, asterisk.Agent{ID: a.ID, SIPNumber: a.SIPNumber, Extension: a.Extension}.LocalNumber())
				}
			} else if len(t.Agents) > 0 {
				custom = append(custom, t.AgentPattern)
			}
			return map[string][]string{"from-internal-custom": custom, asterisk.ProbeContext: {"_X."}}
		},
	}
}

// OMLSide returns the OMniLeads (pjsip wizard) side (docs/asterisk.md#where-the-files-go, #reloads-and-cli-replies).
func OMLSide() Side {
	return Side{
		Role:    events.RoleOML,
		Program: "agents-node",
		// `pjsip reload` does not exist on a stock 20.x (docs/asterisk.md#reloads-and-cli-replies).
		Reloads:      []string{"module reload res_pjsip.so", "dialplan reload"},
		ListCommand:  "pjsip show endpoints",
		forceQualify: true,
		objectEvidence: func(out string) string {
			return endpointBlock(out)
		},
		render: func(t asterisk.Trunk, f FileNames) (asterisk.Rendered, error) {
			names := asterisk.DefaultOMLFiles()
			override(&names.Wizard, f.Trunk)
			override(&names.Dialplan, f.Dialplan)
			override(&names.WizardParent, f.TrunkParent)
			override(&names.ExtensionsParent, f.DialplanParent)
			return asterisk.RenderOML(t, names)
		},
		trunkName:   func(t events.Trunk) string { return t.OMLTrunkName },
		showCommand: func(name string) string { return "pjsip show endpoint " + name },
		qualify:     func(name string) string { return "pjsip qualify " + name },
		parseShow: func(out []byte) (string, error) {
			_, err := asterisk.ParseEndpoint(out)
			return "", err
		},
		// res_pjsip's reload is done when the command returns.
		wantMarker: func(uint64) string { return "" },
		trunkState: func(out []byte, name string) (events.TrunkState, bool, error) {
			eps, err := asterisk.ParseEndpoints(out)
			if err != nil {
				return events.TrunkState{}, false, err
			}
			ep, ok := asterisk.FindEndpoint(eps, name)
			if !ok {
				return events.TrunkState{State: "missing"}, false, fmt.Errorf("endpoint %s: %w", name, asterisk.ErrNotFound)
			}
			st := events.TrunkState{State: ep.State, Reachable: ep.Reachable()}
			for _, c := range ep.Contacts {
				st.State = string(c.Status)
				if c.HasRTT {
					st.RTTMS = c.RTTMS
				}
				if c.Status.Reachable() {
					break
				}
			}
			return st, ep.Pending() || len(ep.Contacts) == 0, nil
		},
		dialplan: func(t events.Trunk) map[string][]string {
			return map[string][]string{"from-pbx": {t.ProbeNumber}, asterisk.ProbeContext: {"_X."}}
		},
	}
}

// trunkElsewhere replaces the content of the side's trunk file with a note, for
// an agent whose Objects hold the trunk: the include stays valid and a trunk
// section left there from before cannot conflict with the object's.
func (s Side) trunkElsewhere(r asterisk.Rendered, f FileNames, rev uint64) asterisk.Rendered {
	name := f.Trunk
	if name == "" {
		name = asterisk.DefaultPBXFiles().Peer
		if s.Role == events.RoleOML {
			name = asterisk.DefaultOMLFiles().Wizard
		}
	}
	out := asterisk.Rendered{Includes: r.Includes, Files: make([]asterisk.File, len(r.Files))}
	copy(out.Files, r.Files)
	for i := range out.Files {
		if out.Files[i].Name == name {
			out.Files[i].Content = []byte(fmt.Sprintf("; Managed by pbxfleet (%s), revision %d. The trunk is not configured in this file:\n; it is an object of the application (objects mode), which writes its own configuration.\n", s.Program, rev))
		}
	}
	return out
}

// withRouteProbe appends the route probe's context (asterisk.RouteProbeDialplan)
// to the side's managed dialplan file.
func (s Side) withRouteProbe(r asterisk.Rendered, f FileNames) asterisk.Rendered {
	name := f.Dialplan
	if name == "" {
		name = asterisk.DefaultOMLFiles().Dialplan
	}
	out := asterisk.Rendered{Includes: r.Includes, Files: make([]asterisk.File, len(r.Files))}
	copy(out.Files, r.Files)
	for i := range out.Files {
		if out.Files[i].Name == name {
			out.Files[i].Content = append(append([]byte(nil), out.Files[i].Content...), asterisk.RouteProbeDialplan()...)
		}
	}
	return out
}

// keyLines keeps the lines of a `sip show peer` detail whose key (before the
// colon) is one of keys, in output order; the first lines when none match.
func keyLines(out string, keys ...string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		k, _, ok := strings.Cut(l, ":")
		if ok && slices.Contains(keys, strings.TrimSpace(k)) {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return firstLines(out, 6)
	}
	return strings.Join(keep, "\n")
}

// endpointBlock keeps the endpoint's own block of `pjsip show endpoint`: from
// the "Endpoint:" line after the header's ===== rule to the next blank line.
// The header block above it holds only <placeholders>.
func endpointBlock(out string) string {
	_, body, ok := strings.Cut(out, "=====")
	if !ok {
		return firstLines(out, 6)
	}
	var keep []string
	for _, l := range strings.Split(body, "\n") {
		switch {
		case strings.TrimSpace(l) == "" && len(keep) > 0:
			return strings.Join(keep, "\n")
		case strings.HasPrefix(strings.TrimSpace(l), "Endpoint:") || len(keep) > 0:
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return firstLines(out, 6)
	}
	return strings.Join(keep, "\n")
}

// SideFor returns the side of a role.
func SideFor(role string) (Side, error) {
	switch role {
	case events.RolePBX:
		return PBXSide(), nil
	case events.RoleOML:
		return OMLSide(), nil
	}
	return Side{}, fmt.Errorf("side for role %q: %w", role, events.ErrInvalidRole)
}

func override(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}
