package intent

import (
	"reflect"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
)

// fullTrunk sets every field of asterisk.Trunk but Revision, which is not part of
// the intent; TestFixturesAreFull keeps it that way when fields are added.
func fullTrunk() asterisk.Trunk {
	return asterisk.Trunk{
		Site:             "bsas-1",
		Scenario:         asterisk.ScenarioCloud,
		PBXAddress:       "10.1.0.2",
		PBXPort:          5070,
		OMLAddress:       "oml.example.net",
		OMLTransport:     "trunk-nat-transport",
		OMLPort:          5162,
		PBXTrunkName:     "omnileads",
		OMLTrunkName:     "issabel",
		PBXUser:          "issabel",
		OMLUser:          "omnileads",
		Secret:           "Xq7-vR2p.Lm9+Wt4",
		PBXCodecs:        []string{"alaw"},
		OMLCodecs:        []string{"alaw", "ulaw"},
		QualifyFrequency: 60,
		DIDs:             []asterisk.DID{{Number: "098098", Extension: "5000"}, {Number: "5551"}},
		Agents: []asterisk.Agent{
			{ID: "1", SIPNumber: "1006", Name: "Adrian Belew", Extension: "2001"},
			{ID: "2", SIPNumber: "1007", Name: "Mikael Ackerfeldt"},
		},
		AgentRouting: asterisk.AgentRoutingPerAgent,
		AgentPattern: "_1XXX.",
		ProbeNumber:  "99999",
		OMLRoute: &asterisk.OMLRoute{Name: "to_pbx", RingTime: 30, DialOptions: "Tt",
			Patterns:        []asterisk.DialPattern{{Pattern: "1XXX"}, {Prefix: "9", Prepend: "0", Pattern: "X."}},
			InboundCampaign: "ventas"},
	}
}

// fullEvent sets every field of events.Trunk but the sealing fields, which the
// conversion leaves to the sealing step.
func fullEvent() events.Trunk {
	return events.Trunk{
		Site:             "ros-2",
		Scenario:         events.ScenarioDocker,
		PBXAddress:       "192.0.2.10",
		PBXPort:          5060,
		OMLAddress:       "192.0.2.10",
		OMLTransport:     "trunk-nat-docker-transport",
		OMLPort:          5163,
		PBXTrunkName:     "oml_trunk",
		OMLTrunkName:     "pbx_trunk",
		PBXUser:          "pbxuser",
		OMLUser:          "oml_trunk",
		Secret:           "b4Zt!9qLw2Np",
		PBXCodecs:        []string{"ulaw", "alaw"},
		OMLCodecs:        []string{"alaw"},
		QualifyFrequency: 30,
		DIDs:             []events.DID{{Number: "4000", Extension: "600"}},
		Agents:           []events.Agent{{ID: "7", SIPNumber: "1010", Name: "Ana", Extension: "700"}},
		AgentRouting:     events.AgentRoutingPattern,
		AgentPattern:     "_1XXX.",
		ProbeNumber:      "88888",
		OMLRoute:         &events.OMLRoute{Name: "r1", RingTime: 25, DialOptions: "T", Patterns: []events.DialPattern{{Pattern: "X."}}, InboundCampaign: "c1"},
	}
}

func TestFixturesAreFull(t *testing.T) {
	zeroFields := func(v any, skip ...string) []string {
		var zero []string
		rv := reflect.ValueOf(v)
		for i := range rv.NumField() {
			name := rv.Type().Field(i).Name
			if rv.Field(i).IsZero() && !slices.Contains(skip, name) {
				zero = append(zero, name)
			}
		}
		return zero
	}
	assert.Empty(t, zeroFields(fullTrunk(), "Revision"), "asterisk.Trunk fields the round trip does not cover")
	assert.Empty(t, zeroFields(fullEvent(), "SealedSecret", "SealedBy"), "events.Trunk fields the round trip does not cover")
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		trunk asterisk.Trunk
	}{
		{name: "full", trunk: fullTrunk()},
		{name: "no dids no agents", trunk: func() asterisk.Trunk {
			tr := fullTrunk()
			tr.DIDs, tr.Agents, tr.AgentRouting, tr.AgentPattern = nil, nil, "", ""
			return tr
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.trunk, ToTrunk(ToEvent(tt.trunk)))
		})
	}
}

func TestRoundTripFromEvent(t *testing.T) {
	e := fullEvent()
	assert.Equal(t, e, ToEvent(ToTrunk(e)))
}

func TestToEventValues(t *testing.T) {
	e := ToEvent(fullTrunk())
	assert.Equal(t, "cloud", e.Scenario)
	assert.Equal(t, "per_agent", e.AgentRouting)
	assert.Equal(t, []events.DID{{Number: "098098", Extension: "5000"}, {Number: "5551"}}, e.DIDs)
	assert.Equal(t, "Adrian Belew", e.Agents[0].Name)
	assert.Empty(t, e.SealedSecret)
	// The converted intent is valid on the wire once a revision is attached.
	require.NoError(t, events.Desired{Node: events.NodeID(e.Site, events.RolePBX), Revision: 1, Trunk: e}.Validate())
}

func TestToTrunkRendersLikeTheOriginal(t *testing.T) {
	orig := fullTrunk()
	back := ToTrunk(ToEvent(orig))
	want, err := asterisk.RenderPBX(orig, asterisk.DefaultPBXFiles())
	require.NoError(t, err)
	got, err := asterisk.RenderPBX(back, asterisk.DefaultPBXFiles())
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestConversionCopiesSlices(t *testing.T) {
	orig := fullTrunk()
	e := ToEvent(orig)
	e.PBXCodecs[0] = "g729"
	e.DIDs[0].Number = "1"
	e.Agents[0].ID = "9"
	assert.Equal(t, fullTrunk(), orig, "ToEvent must not share memory with its input")

	ev := fullEvent()
	tr := ToTrunk(ev)
	tr.OMLCodecs[0] = "g729"
	tr.DIDs[0].Number = "1"
	assert.Equal(t, fullEvent(), ev, "ToTrunk must not share memory with its input")
}

func TestSealedSecretIsNotCopied(t *testing.T) {
	e := fullEvent()
	e.Secret, e.SealedSecret, e.SealedBy = "", "c2VhbGVk", "a2V5"
	tr := ToTrunk(e)
	assert.Empty(t, tr.Secret)
	// The renderer refuses a trunk whose secret was never unsealed.
	_, err := asterisk.RenderOML(tr, asterisk.DefaultOMLFiles())
	require.Error(t, err)
}
