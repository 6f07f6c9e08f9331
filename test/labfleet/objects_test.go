package labfleet_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/labfleet"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/internal/omlobjects"
)

// TestLabFleetOMLObjects: with the OMniLeads agents in objects mode against the
// stand-in of the OMniLeads application, every site converges with its probe
// ending in cause 1; the trunk and the outbound route are objects of the
// stand-in (the trunk reaches Asterisk through OMniLeads' own trunks file, not
// the agent's wizard file); an inbound route deleted afterwards shows in the
// node's check, naming the DID.
func TestLabFleetOMLObjects(t *testing.T) {
	srv := natstest.Start(t)
	sites := labfleet.Sites("objs", 230, 3)
	p, secrets := plan(t, sites)
	f, err := labfleet.Start(context.Background(), sites, labfleet.Options{
		Dir: t.TempDir(), NATSURL: srv.URL,
		Deadlines:    node.Deadlines{Verify: 8 * time.Second, Probe: 6 * time.Second},
		PollInterval: 50 * time.Millisecond, StatusInterval: time.Second, QualifyTimeout: time.Second,
		OMLObjects: true, InboundDIDs: []string{"098098"},
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.Close()) })
	putAll(t, srv, p)
	got := results(t, srv, 6)
	requireProven(t, got)
	for _, s := range sites {
		id := events.NodeID(s.ID, events.RoleOML)
		r := got[id]
		for _, c := range []string{omlobjects.CheckTrunk, omlobjects.CheckRoute, omlobjects.CheckInbound + " 098098", node.CheckRouteProbe} {
			assert.True(t, passed(r, c), "%s: %s", id, c)
		}
		for _, c := range r.Checks {
			if c.Name == node.CheckRouteProbe {
				t.Logf("%s %s: %s", id, c.Name, c.Detail)
			}
		}
		app := f.OMLApp(id)
		require.NotNil(t, app)
		assert.Equal(t, "issabel", app.Hash("OML:TRUNK:1")["NAME"])
		assert.Equal(t, "1", app.Hash("OML:OUTR:1")["TRUNK-1"])
		b, err := os.ReadFile(filepath.Join(f.ConfigDir(id), "oml_pjsip_trunks.conf"))
		require.NoError(t, err)
		assert.Contains(t, string(b), "[issabel]\ntype=wizard\n")
		assert.Contains(t, string(b), "outbound_auth/password="+secrets[s.ID])
		w, err := os.ReadFile(filepath.Join(f.ConfigDir(id), "pbxfleet_pjsip_wizard.conf"))
		require.NoError(t, err)
		assert.NotContains(t, string(w), "[issabel]")
	}

	victim := events.NodeID(sites[1].ID, events.RoleOML)
	f.OMLApp(victim).DeleteInboundRoute("098098")
	rep, err := f.Agent(victim).Check(context.Background(), false)
	require.NoError(t, err)
	assert.False(t, rep.Passed)
	assert.Equal(t, omlobjects.CheckInbound+" 098098: DID 098098 has no inbound route in OMniLeads (OML:INR:098098 missing)", rep.Reason)
}
