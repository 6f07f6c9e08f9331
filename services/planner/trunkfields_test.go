package planner

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
)

// zeroFields names the fields of the struct v that hold their zero value,
// except those in skip; a pointer to a struct is followed (prefix.Field).
func zeroFields(v reflect.Value, prefix string, skip map[string]bool) []string {
	var zero []string
	for i := range v.NumField() {
		name := prefix + v.Type().Field(i).Name
		f := v.Field(i)
		switch {
		case skip[name]:
		case f.IsZero():
			zero = append(zero, name)
		case f.Kind() == reflect.Pointer && f.Elem().Kind() == reflect.Struct:
			zero = append(zero, zeroFields(f.Elem(), name+".", skip)...)
		}
	}
	return zero
}

// TestPlanFillsEveryTrunkField: a fleet file that sets every trunk setting
// yields desired states with no field of the wire trunk left empty. A field
// added to events.Trunk (and the renderer's model) that the planner never
// fills fails here, beside the schema test (events) and the round trip
// (internal/intent) that catch the other places a new field must reach.
func TestPlanFillsEveryTrunkField(t *testing.T) {
	route := `{name: to_issabel, ring_time: 30, dial_options: Tt, patterns: [{prefix: "9", prepend: "0", pattern: "X."}]}`
	data := fleet("", lanSite("s1", `oml: {address: 10.0.0.2, outbound_route: `+route+`, inbound_campaign: entrantes}`))
	p, err := planYAML(data, t.TempDir(), testOptions())
	require.NoError(t, err)
	require.Len(t, p.Sites, 1)
	// Sealing replaces Secret later (rollout --seal); an extension is per
	// agent only under per_agent routing, covered below.
	skip := map[string]bool{"SealedSecret": true, "SealedBy": true}
	for _, np := range p.Sites[0].Nodes {
		tr := np.Desired.Trunk
		assert.Empty(t, zeroFields(reflect.ValueOf(tr), "", skip), "%s: trunk fields the planner left empty", np.Desired.Node)
		require.NotEmpty(t, tr.DIDs)
		assert.Empty(t, zeroFields(reflect.ValueOf(tr.DIDs[0]), "DIDs.", nil), np.Desired.Node)
		require.NotEmpty(t, tr.OMLRoute.Patterns)
		assert.Empty(t, zeroFields(reflect.ValueOf(tr.OMLRoute.Patterns[0]), "Patterns.", nil), np.Desired.Node)
	}

	perAgent := fleet("", lanSite("s1", `agent_routing: per_agent, agents: [{id: 1, sip_number: 1006, name: Adrian Belew, extension: 2001}]`))
	p, err = planYAML(perAgent, t.TempDir(), testOptions())
	require.NoError(t, err)
	var agents []events.Agent
	for _, np := range p.Sites[0].Nodes {
		agents = append(agents, np.Desired.Trunk.Agents...)
	}
	require.NotEmpty(t, agents)
	for _, a := range agents {
		assert.Empty(t, zeroFields(reflect.ValueOf(a), "Agents.", nil), "agent fields the planner left empty")
	}
}
