package lab

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/omlobjects"
)

func standinTrunk() events.Trunk {
	return events.Trunk{
		Site: "s1", Scenario: "lan", PBXAddress: "10.0.0.2", PBXPort: 5060, OMLAddress: "10.0.0.3",
		OMLTransport: "trunk-transport", OMLPort: 5161, PBXTrunkName: "omnileads", OMLTrunkName: "issabel",
		PBXUser: "issabel", OMLUser: "omnileads", Secret: "Stand-in-Secret-1", PBXCodecs: []string{"alaw"},
		OMLCodecs: []string{"alaw"}, QualifyFrequency: 60, DIDs: []events.DID{{Number: "098098"}, {Number: "098099"}}, ProbeNumber: "99999",
	}
}

// TestOMLAppKeepsTheContract: the stand-in behaves as the real OMniLeads did in
// omlobjects' tests against it (TestRealOMniLeads*): objects and hashes after an
// apply, an idempotent re-apply, rollback to the previous and to no objects, a
// missing inbound route named, AMI down making the apply fail.
func TestOMLAppKeepsTheContract(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	app := NewOMLApp(dir)
	app.AddInboundRoute("098098")
	o, err := omlobjects.New(omlobjects.Config{Deployment: omlobjects.KindPodman2x}, app.Run)
	require.NoError(t, err)
	tr := standinTrunk()

	empty, err := o.Snapshot(ctx, tr)
	require.NoError(t, err)
	_, err = o.Apply(ctx, tr, tr.Secret)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"TECH": "PJSIP", "NAME": "issabel", "CHANNELS": "1000", "CALLERID": ""}, app.Hash("OML:TRUNK:1"))
	assert.Equal(t, "1", app.Hash("OML:OUTR:1")["TRUNK-1"])
	b, err := os.ReadFile(filepath.Join(dir, "oml_pjsip_trunks.conf"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "\n[issabel]\ntype=wizard\n")

	syncs := app.Syncs()
	_, err = o.Apply(ctx, tr, tr.Secret)
	require.NoError(t, err)
	assert.Equal(t, syncs, app.Syncs(), "an unchanged apply regenerates nothing")

	checks := o.Verify(ctx, tr)
	require.Len(t, checks, 4)
	assert.True(t, checks[0].Passed && checks[1].Passed && checks[2].Passed)
	assert.False(t, checks[3].Passed)
	assert.Equal(t, "DID 098099 has no inbound route in OMniLeads (OML:INR:098099 missing)", checks[3].Detail)

	snap1, err := o.Snapshot(ctx, tr)
	require.NoError(t, err)
	tr2 := tr
	tr2.OMLRoute = &events.OMLRoute{Name: "pbxfleet_issabel", RingTime: 40, DialOptions: "T", Patterns: []events.DialPattern{{Prefix: "9", Pattern: "X."}}}
	_, err = o.Apply(ctx, tr2, "Other-Secret-2")
	require.NoError(t, err)
	assert.Equal(t, "1", app.Hash("OML:OUTR:1")["PREFIX-1"])
	require.NoError(t, o.Restore(ctx, snap1))
	assert.Equal(t, "25", app.Hash("OML:OUTR:1")["RINGTIME"])
	b, _ = os.ReadFile(filepath.Join(dir, "oml_pjsip_trunks.conf"))
	assert.Contains(t, string(b), tr.Secret)
	require.NoError(t, o.Restore(ctx, empty))
	assert.Nil(t, app.Hash("OML:TRUNK:1"))
	assert.Nil(t, app.Hash("OML:OUTR:1"))

	app.SetAMIDown(true)
	_, err = o.Apply(ctx, tr, tr.Secret)
	require.ErrorIs(t, err, omlobjects.ErrOMniLeads)
	assert.Contains(t, err.Error(), "database and Redis disagree: SIP trunk issabel (id 2) has OML:TRUNK:2 missing")
}
