package planner

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/asterisk"
)

// TestOMLRouteFromTheFleetFile: a site without route fields carries no route in
// its intent (the agent takes the defaults: every number to the PBX); a route in
// the defaults reaches every site with its unset fields defaulted; a site's route
// replaces it; the inbound campaign is inherited on its own; plan reports the
// objects with the secret masked.
func TestOMLRouteFromTheFleetFile(t *testing.T) {
	spec, err := Parse([]byte(fleet("", lanSite("a", ""))), ".", testOptions())
	require.NoError(t, err)
	assert.Nil(t, spec.Sites[0].Trunk.OMLRoute)

	f := fleet(`oml: {outbound_route: {ring_time: 40}, inbound_campaign: ventas}`,
		lanSite("a", ""),
		lanSite("b", `oml: {address: 10.0.0.2, outbound_route: {name: to_pbx, dial_options: T, patterns: [{prefix: "9", prepend: "0", pattern: X.}, {pattern: 1XXX}]}}`))
	spec, err = Parse([]byte(f), ".", testOptions())
	require.NoError(t, err)
	assert.Equal(t, &asterisk.OMLRoute{Name: "pbxfleet_issabel", RingTime: 40, DialOptions: "Tt",
		Patterns: []asterisk.DialPattern{{Pattern: "X."}}, InboundCampaign: "ventas"}, spec.Sites[0].Trunk.OMLRoute)
	assert.Equal(t, &asterisk.OMLRoute{Name: "to_pbx", RingTime: 25, DialOptions: "T",
		Patterns:        []asterisk.DialPattern{{Prefix: "9", Prepend: "0", Pattern: "X."}, {Pattern: "1XXX"}},
		InboundCampaign: "ventas"}, spec.Sites[1].Trunk.OMLRoute)

	p, err := BuildPlan(spec, nil)
	require.NoError(t, err)
	r := p.Report()
	o := r.Sites[1].OMLObjects
	assert.Equal(t, "issabel", o.Trunk.Name)
	assert.Equal(t, "pjsip", o.Trunk.Technology)
	assert.Contains(t, o.Trunk.TextConfig, "inbound_auth/password="+asterisk.MaskedSecret)
	assert.NotContains(t, o.Trunk.TextConfig, testSecret)
	assert.Equal(t, "to_pbx", o.OutboundRoute.Name)
	assert.Equal(t, []string{"098098"}, o.InboundRoutes)
	assert.Equal(t, "to_pbx", r.Sites[1].Nodes[1].Intent.OMLRoute.Name, "the route travels in the intent")
}

// TestOMLRouteRejects: route values OMniLeads' own validators would refuse are
// refused in the fleet file, where they are written.
func TestOMLRouteRejects(t *testing.T) {
	f := fleet("", lanSite("a", `oml: {address: 10.0.0.2, outbound_route: {name: "to pbx", ring_time: 0, dial_options: Tg, patterns: [{prefix: "9a", pattern: "X;"}]}, inbound_campaign: "a b"}`))
	_, err := Parse([]byte(f), ".", testOptions())
	require.Error(t, err)
	for _, want := range []string{"sites[a].oml.outbound_route", `outbound route name "to pbx"`, "ring time 0", `dial options "Tg"`, `prefix "9a"`, "sites[a].oml.inbound_campaign"} {
		assert.Contains(t, err.Error(), want)
	}
}
