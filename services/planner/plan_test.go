package planner

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
	"github.com/pbxfleet/pbxfleet/internal/intent"
)

func twoSiteSpec(t *testing.T, extra string) *Spec {
	t.Helper()
	spec, err := Parse([]byte(fleet("", lanSite("s1", extra), lanSite("s2", "scenario: cloud, secret: env:OTHER_SECRET"))), t.TempDir(), testOptions())
	require.NoError(t, err)
	return spec
}

// currentOf turns a plan into the fleet's current state at a revision.
func currentOf(p *Plan, rev uint64) map[string]events.Desired {
	cur := map[string]events.Desired{}
	for _, sp := range p.Sites {
		for _, np := range sp.Nodes {
			d := np.Desired
			d.Revision = rev
			cur[d.Node] = d
		}
	}
	return cur
}

func TestBuildPlanNewFleet(t *testing.T) {
	spec := twoSiteSpec(t, "")
	plan, err := BuildPlan(spec, nil)
	require.NoError(t, err)
	require.Len(t, plan.Sites, 2)
	assert.Len(t, plan.Hash, 64)
	assert.Empty(t, plan.Removed)

	for _, sp := range plan.Sites {
		require.Len(t, sp.Nodes, 2)
		assert.Equal(t, events.RolePBX, sp.Nodes[0].Role)
		assert.Equal(t, events.RoleOML, sp.Nodes[1].Role)
		for _, np := range sp.Nodes {
			d := np.Desired
			assert.Equal(t, events.NodeID(sp.Site.ID, np.Role), d.Node)
			assert.Equal(t, ChangeNew, np.Change)
			assert.Empty(t, np.Changes)
			assert.Zero(t, np.CurrentRevision)
			assert.Equal(t, uint64(1), d.Revision)
			assert.Equal(t, plan.Hash, d.PlanHash)
			require.NoError(t, d.Validate(), "the desired state is valid on the wire")
			// The agent renders from the wire intent exactly what the plan shows.
			back := intent.ToTrunk(d.Trunk)
			back.Revision = d.Revision
			assert.Equal(t, sp.Site.Trunk.Secret, back.Secret)
			var again asterisk.Rendered
			if np.Role == events.RolePBX {
				again, err = asterisk.RenderPBX(back, asterisk.DefaultPBXFiles())
			} else {
				again, err = asterisk.RenderOML(back, asterisk.DefaultOMLFiles())
			}
			require.NoError(t, err)
			assert.Equal(t, again, np.Rendered)
			for _, f := range np.Rendered.Files {
				rev, ok := asterisk.ManagedHeaderRevision(f.Content)
				assert.True(t, ok)
				assert.Equal(t, uint64(1), rev)
			}
		}
		assert.Len(t, sp.Relations, 8)
	}
	assert.Equal(t, testSecret, plan.Sites[0].Nodes[0].Desired.Trunk.Secret)
	assert.Equal(t, "Other.Secret-4471-xyz", plan.Sites[1].Nodes[1].Desired.Trunk.Secret)
}

func TestBuildPlanAgainstCurrent(t *testing.T) {
	first, err := BuildPlan(twoSiteSpec(t, ""), nil)
	require.NoError(t, err)
	current := currentOf(first, 4)

	t.Run("unchanged keeps the revision and the hash", func(t *testing.T) {
		plan, err := BuildPlan(twoSiteSpec(t, ""), current)
		require.NoError(t, err)
		assert.Equal(t, first.Hash, plan.Hash, "the hash does not depend on the current state")
		for _, sp := range plan.Sites {
			for _, np := range sp.Nodes {
				assert.Equal(t, ChangeUnchanged, np.Change, np.Desired.Node)
				assert.Empty(t, np.Changes)
				assert.Equal(t, uint64(4), np.CurrentRevision)
				assert.Equal(t, uint64(4), np.Desired.Revision)
				rev, _ := asterisk.ManagedHeaderRevision(np.Rendered.Files[0].Content)
				assert.Equal(t, uint64(4), rev, "unchanged files render byte for byte as the node has them")
			}
		}
	})

	t.Run("changed bumps the revision and names the fields", func(t *testing.T) {
		spec := twoSiteSpec(t, `pbx: {address: 10.0.0.1, port: 5070}, secret: env:OTHER_SECRET, dids: [{number: "098098", extension: "5001"}]`)
		plan, err := BuildPlan(spec, current)
		require.NoError(t, err)
		assert.NotEqual(t, first.Hash, plan.Hash)
		s1 := plan.Sites[0]
		for _, np := range s1.Nodes {
			assert.Equal(t, ChangeChanged, np.Change)
			assert.Equal(t, uint64(4), np.CurrentRevision)
			assert.Equal(t, uint64(5), np.Desired.Revision)
			assert.Equal(t, []string{"pbx_port: 5060 -> 5070", "secret changed", "dids: entries changed"}, np.Changes)
			for _, c := range np.Changes {
				assert.NotContains(t, c, testSecret)
				assert.NotContains(t, c, "Other.Secret")
			}
		}
		for _, np := range plan.Sites[1].Nodes {
			assert.Equal(t, ChangeUnchanged, np.Change, "the other site is untouched")
		}
	})

	t.Run("one node behind", func(t *testing.T) {
		cur := currentOf(first, 4)
		d := cur["s2.oml"]
		d.Revision = 9
		d.Trunk.QualifyFrequency = 30
		d.Trunk.OMLCodecs = []string{"alaw"}
		cur["s2.oml"] = d
		delete(cur, "s1.pbx")
		plan, err := BuildPlan(twoSiteSpec(t, ""), cur)
		require.NoError(t, err)
		assert.Equal(t, ChangeNew, plan.Sites[0].Nodes[0].Change)
		assert.Equal(t, uint64(1), plan.Sites[0].Nodes[0].Desired.Revision)
		oml := plan.Sites[1].Nodes[1]
		assert.Equal(t, ChangeChanged, oml.Change)
		assert.Equal(t, uint64(10), oml.Desired.Revision)
		assert.Equal(t, []string{"oml_codecs: [alaw] -> [alaw, ulaw]", "qualify_frequency: 30 -> 60"}, oml.Changes)
	})

	t.Run("a sealed current secret is not compared", func(t *testing.T) {
		cur := currentOf(first, 2)
		for k, d := range cur {
			d.Trunk.Secret, d.Trunk.SealedSecret, d.Trunk.SealedBy = "", "c2VhbGVk", "a2V5"
			cur[k] = d
		}
		plan, err := BuildPlan(twoSiteSpec(t, ""), cur)
		require.NoError(t, err)
		assert.Equal(t, ChangeUnchanged, plan.Sites[0].Nodes[0].Change)
	})

	t.Run("removed sites are listed, not touched", func(t *testing.T) {
		cur := currentOf(first, 1)
		cur["gone.pbx"] = events.Desired{Node: "gone.pbx", Revision: 3}
		cur["gone.oml"] = events.Desired{Node: "gone.oml", Revision: 3}
		plan, err := BuildPlan(twoSiteSpec(t, ""), cur)
		require.NoError(t, err)
		assert.Equal(t, []string{"gone.oml", "gone.pbx"}, plan.Removed)
	})

	t.Run("a selection does not list the other sites as removed", func(t *testing.T) {
		spec, err := twoSiteSpec(t, "").Select("s2")
		require.NoError(t, err)
		plan, err := BuildPlan(spec, current)
		require.NoError(t, err)
		assert.Empty(t, plan.Removed)
		assert.Len(t, plan.Sites, 1)
	})
}

func TestBuildPlanRejectsBadCurrent(t *testing.T) {
	tests := map[string]map[string]events.Desired{
		"key is not a node id":  {"s1": {Node: "s1", Revision: 1}},
		"bad role":              {"s1.web": {Node: "s1.web", Revision: 1}},
		"state filed elsewhere": {"s1.pbx": {Node: "s2.pbx", Revision: 1}},
	}
	for name, cur := range tests {
		t.Run(name, func(t *testing.T) {
			plan, err := BuildPlan(twoSiteSpec(t, ""), cur)
			require.ErrorIs(t, err, ErrBadCurrent)
			assert.Nil(t, plan)
		})
	}
}

func TestPlanHash(t *testing.T) {
	a, err := BuildPlan(twoSiteSpec(t, ""), nil)
	require.NoError(t, err)
	b, err := BuildPlan(twoSiteSpec(t, ""), nil)
	require.NoError(t, err)
	assert.Equal(t, a.Hash, b.Hash, "deterministic")

	for _, extra := range []string{"secret: env:OTHER_SECRET", "oml: {address: 10.0.0.3}", `probe_number: "88888"`, "agent_routing: per_agent"} {
		c, err := BuildPlan(twoSiteSpec(t, extra), nil)
		require.NoError(t, err)
		assert.NotEqual(t, a.Hash, c.Hash, extra)
	}
}

func TestRelationsCheckTheRenderedFiles(t *testing.T) {
	plan, err := BuildPlan(twoSiteSpec(t, ""), nil)
	require.NoError(t, err)
	sp := plan.Sites[0]
	names := map[string]bool{}
	for _, r := range sp.Relations {
		assert.True(t, r.Holds, r.Name)
		assert.Empty(t, r.Why)
		names[r.Name] = true
		assert.NotContains(t, r.PBX+r.OML+r.Rule, testSecret)
	}

	replace := func(r asterisk.Rendered, old, new string) asterisk.Rendered {
		out := asterisk.Rendered{Includes: r.Includes}
		for _, f := range r.Files {
			out.Files = append(out.Files, asterisk.File{Name: f.Name, Content: bytes.ReplaceAll(f.Content, []byte(old), []byte(new))})
		}
		return out
	}
	pbx, oml := sp.Nodes[0].Rendered, sp.Nodes[1].Rendered
	tests := []struct {
		name     string
		pbx, oml asterisk.Rendered
		broken   string
	}{
		// The seed's own bug (docs/asterisk.md#how-the-two-sides-relate): the two sides disagree on the secret.
		{"seed's secret mismatch", replace(pbx, "secret="+testSecret, "secret=omnileads"), oml, "secret (both directions)"},
		{"one password differs", pbx, replace(oml, "outbound_auth/password="+testSecret, "outbound_auth/password=issabelOML"), "secret (both directions)"},
		{"auth user is not the peer", pbx, replace(oml, "outbound_auth/username=omnileads", "outbound_auth/username=issabel"), "trunk name / OML auth user"},
		{"inbound user", replace(pbx, "defaultuser=issabel", "defaultuser=other"), oml, "PBX user / OML inbound user"},
		{"wrong transport port", replace(pbx, "port=5161", "port=5162"), oml, "peer host:port / OML transport"},
		{"remote_hosts", pbx, replace(oml, "remote_hosts=10.0.0.1:5060", "remote_hosts=10.0.0.9:5060"), "PBX SIP address / OML remote_hosts"},
		{"no common codec", replace(pbx, "allow=alaw", "allow=g729"), oml, "codecs"},
		{"context", pbx, replace(oml, "endpoint/context=from-pbx", "endpoint/context=default"), "where calls land"},
		{"dial string to another peer", replace(pbx, "Dial(SIP/omnileads/098098)", "Dial(SIP/other/098098)"), oml, "dial strings / trunk sections"},
		{"option written twice", replace(pbx, "qualify=yes\n", "qualify=yes\nsecret=x\n"), oml, "secret (both directions)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var failed []string
			for _, r := range relations(sp.Site, tt.pbx, tt.oml) {
				if !r.Holds {
					failed = append(failed, r.Name)
					assert.NotEmpty(t, r.Why)
					assert.NotContains(t, r.PBX+r.OML+r.Why, testSecret)
				}
			}
			assert.Equal(t, []string{tt.broken}, failed)
		})
	}

	t.Run("another value is never shown", func(t *testing.T) {
		for _, r := range relations(sp.Site, replace(pbx, "secret="+testSecret, "secret=Leaky-Other-Value"), oml) {
			assert.NotContains(t, r.PBX+r.OML+r.Why, "Leaky-Other-Value")
		}
	})
}

func TestReportMasksSecrets(t *testing.T) {
	first, err := BuildPlan(twoSiteSpec(t, ""), nil)
	require.NoError(t, err)
	plan, err := BuildPlan(twoSiteSpec(t, "secret: env:OTHER_SECRET"), currentOf(first, 1))
	require.NoError(t, err)

	rep := plan.Report()
	js, err := json.Marshal(rep)
	require.NoError(t, err)
	assert.NotContains(t, string(js), testSecret)
	assert.NotContains(t, string(js), "Other.Secret-4471-xyz")
	assert.Contains(t, string(js), asterisk.MaskedSecret)

	assert.Equal(t, Summary{Sites: 2, Nodes: 4, Changed: 2, Unchanged: 2}, rep.Summary)
	s1 := rep.Sites[0]
	assert.Equal(t, "env:OTHER_SECRET", s1.SecretSource)
	assert.Equal(t, asterisk.MaskedSecret, s1.Nodes[0].Intent.Secret)
	assert.Contains(t, s1.Nodes[0].Files[0].Content, "secret="+asterisk.MaskedSecret)
	assert.Equal(t, []string{"secret changed"}, s1.Nodes[0].Changes)
	assert.Equal(t, "#include pbxfleet_sip.conf", s1.Nodes[0].Includes[0].Line)
	// The plan itself still carries the secret for publishing.
	assert.Equal(t, "Other.Secret-4471-xyz", plan.Sites[0].Nodes[0].Desired.Trunk.Secret)

	again, err := json.Marshal(plan.Report())
	require.NoError(t, err)
	assert.Equal(t, js, again, "stable JSON")
	assert.True(t, strings.HasPrefix(string(js), `{"plan_hash":"`+plan.Hash+`","summary":`))
}

func TestDialTargets(t *testing.T) {
	tests := []struct {
		name    string
		content string
		pjsip   bool
		want    []string
	}{
		{"chan_sip", "exten => 1,1,Dial(SIP/omnileads/098098)\n same => n,Dial(SIP/omnileads/${EXTEN},5,g)\n", false, []string{"omnileads"}},
		{"two peers", "Dial(SIP/b/1)\nDial(SIP/a/2)\n", false, []string{"a", "b"}},
		{"not inside PJSIP", "Dial(PJSIP/${EXTEN}@issabel,5,g)\n", false, nil},
		{"not inside another word", "Dial(XSIP/a/1)\n", false, nil},
		{"pjsip", "Dial(PJSIP/${EXTEN}@issabel,5,g)\nDial(PJSIP/99@issabel)\n", true, []string{"issabel"}},
		{"pjsip ignores chan_sip", "Dial(SIP/omnileads/1)\n", true, nil},
		{"pjsip without endpoint", "Dial(PJSIP/issabel/1)\n", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, dialTargets([]byte(tt.content), tt.pjsip))
		})
	}
}
