package asterisk

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/testfixtures"
)

// The flag is looked up before it is defined because other test files of this
// package may define the same -update flag for their own golden files; package
// variables (a flag.Bool there) and earlier files' init run before this one.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite testdata/golden from the current output")
	}
}

// updateGolden reports whether the test run was asked to rewrite golden files.
func updateGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// The addresses of the real captures in fixtures/asterisk-20.20.1: the PBX's chan_sip
// on 127.0.0.2:5060, OML's transports on 127.0.0.3.
const (
	fixturePBX = "127.0.0.2"
	fixtureOML = "127.0.0.3"
	// testSecret differs from both of the seed's secrets so the seed comparison proves
	// that the secret comes from the spec, not from a template.
	testSecret = "Trunk.s3cret"
)

// seedTrunk is the seed's example site: trunk omnileads/issabel, DID 098098 on local
// extension 5000, the agents Adrian Belew (1, SIP 1006) and Mikael Ackerfeldt (2, SIP 1007).
func seedTrunk(s Scenario, routing AgentRouting) Trunk {
	tr := ProfileOML1.Transports[s]
	return Trunk{
		Site:             "bsas-1",
		Revision:         7,
		Scenario:         s,
		PBXAddress:       fixturePBX,
		PBXPort:          5060,
		OMLAddress:       fixtureOML,
		OMLTransport:     tr.Name,
		OMLPort:          tr.Port,
		PBXTrunkName:     "omnileads",
		OMLTrunkName:     "issabel",
		PBXUser:          "issabel",
		OMLUser:          "omnileads",
		Secret:           testSecret,
		PBXCodecs:        []string{"alaw"},
		OMLCodecs:        []string{"alaw", "ulaw"},
		QualifyFrequency: 60,
		DIDs:             []DID{{Number: "098098", Extension: "5000"}, {Number: "098099"}},
		Agents: []Agent{
			{ID: "1", SIPNumber: "1006", Name: "Adrian Belew"},
			{ID: "2", SIPNumber: "1007", Name: "Mikael Ackerfeldt", Extension: "2002"},
		},
		AgentRouting: routing,
		AgentPattern: "_1XXXX.",
		ProbeNumber:  "55555",
	}
}

// seedBlocks returns the key=value lines of every "code-block:: bash" of the seed
// that has any, in document order.
func seedBlocks(t *testing.T) [][]string {
	t.Helper()
	raw := testfixtures.Manual(t)
	var blocks [][]string
	var cur []string
	in := false
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == ".. code-block:: bash":
			in, cur = true, nil
		case !in || strings.TrimSpace(line) == "":
		case line[0] == ' ' || line[0] == '\t':
			if strings.Contains(line, "=") {
				cur = append(cur, strings.TrimSpace(line))
			}
		default: // first unindented line ends the block
			if len(cur) > 0 {
				blocks = append(blocks, cur)
			}
			in = false
		}
	}
	require.NoError(t, sc.Err())
	if in && len(cur) > 0 { // the last block may end the file
		blocks = append(blocks, cur)
	}
	return blocks
}

// seedKV turns a seed block into what the renderer must emit for tr: the fixture
// addresses for the placeholders, the spec's secret for every secret, and each key
// once (the docker wizard block repeats endpoint/rtp_symmetric). It returns the
// lines and how many duplicates it dropped.
func seedKV(block []string, tr Trunk) ([]string, int) {
	secretKeys := map[string]bool{"secret": true, "inbound_auth/password": true, "outbound_auth/password": true}
	seen := map[string]bool{}
	var out []string
	dropped := 0
	for _, line := range block {
		k, v, _ := strings.Cut(line, "=")
		if seen[k] {
			dropped++
			continue
		}
		seen[k] = true
		if secretKeys[k] {
			v = tr.Secret
		}
		v = strings.NewReplacer("XXX.XXX.XXX.OML", tr.OMLAddress, "XXX.XXX.XXX.PBX", tr.PBXAddress).Replace(v)
		out = append(out, k+"="+v)
	}
	return out, dropped
}

// sectionKV returns the section names of a rendered file and its key=value lines.
func sectionKV(content []byte) (sections, kv []string) {
	for _, line := range strings.Split(string(content), "\n") {
		switch {
		case strings.HasPrefix(line, "["):
			sections = append(sections, line)
		case strings.HasPrefix(line, ";"), line == "":
		case strings.Contains(line, "="):
			kv = append(kv, line)
		}
	}
	return sections, kv
}

func mustRender(t testing.TB, tr Trunk) (pbx, oml Rendered) {
	t.Helper()
	pbx, err := RenderPBX(tr, DefaultPBXFiles())
	require.NoError(t, err)
	oml, err = RenderOML(tr, DefaultOMLFiles())
	require.NoError(t, err)
	return pbx, oml
}

func TestRenderMatchesSeedBlocks(t *testing.T) {
	blocks := seedBlocks(t)
	var peers, wizards [][]string
	for _, b := range blocks {
		switch b[0] {
		case "type=friend":
			peers = append(peers, b)
		case "type=wizard":
			wizards = append(wizards, b)
		}
	}
	// The seed lists lan, cloud, docker in this order on both sides.
	require.Len(t, peers, 3, "peer blocks in the seed")
	require.Len(t, wizards, 3, "wizard blocks in the seed")

	for i, s := range Scenarios {
		t.Run(string(s), func(t *testing.T) {
			tr := seedTrunk(s, AgentRoutingPattern)
			pbx, oml := mustRender(t, tr)

			wantPeer, dropped := seedKV(peers[i], tr)
			assert.Zero(t, dropped, "seed peer block repeats a key")
			// One key beyond the manual's: chan_sip's qualify period, the same
			// as the OMniLeads side's aor/qualify_frequency (60: chan_sip's default).
			at := slices.Index(wantPeer, "qualify=yes") + 1
			wantPeer = slices.Insert(wantPeer, at, "qualifyfreq=60")
			// And the revision as the peer's description, so the agent can
			// tell when chan_sip's (asynchronous) reload has landed.
			wantPeer = append(wantPeer, "description="+PeerDescription(tr.Revision))
			sections, gotPeer := sectionKV(pbx.Files[0].Content)
			assert.Equal(t, []string{"[omnileads]"}, sections)
			assert.Equal(t, wantPeer, gotPeer)

			wantWiz, dropped := seedKV(wizards[i], tr)
			// Only the docker block has the duplicate; if the seed changes, look again.
			assert.Equal(t, map[bool]int{true: 1, false: 0}[s == ScenarioDocker], dropped, "duplicate keys dropped")
			sections, gotWiz := sectionKV(oml.Files[0].Content)
			assert.Equal(t, []string{"[issabel]"}, sections)
			assert.Equal(t, wantWiz, gotWiz)
		})
	}
}

// goldenCases are the full-file golden scenarios: every scenario with both agent
// routings, and a bare site (no DIDs, no agents, OMniLeads 2.x transport).
func goldenCases() map[string]Trunk {
	cases := map[string]Trunk{}
	for _, s := range Scenarios {
		for _, r := range []AgentRouting{AgentRoutingPattern, AgentRoutingPerAgent} {
			cases[string(s)+"_"+string(r)] = seedTrunk(s, r)
		}
	}
	bare := seedTrunk(ScenarioLAN, "")
	bare.DIDs, bare.Agents, bare.AgentPattern = nil, nil, ""
	bare.OMLTransport = ProfileOML2.Transports[ScenarioLAN].Name
	bare.OMLPort = ProfileOML2.Transports[ScenarioLAN].Port
	bare.Revision = 1
	cases["lan_bare_oml2"] = bare
	return cases
}

func TestRenderGolden(t *testing.T) {
	for name, tr := range goldenCases() {
		t.Run(name, func(t *testing.T) {
			pbx, oml := mustRender(t, tr)
			for side, r := range map[string]Rendered{"pbx": pbx, "oml": oml} {
				for _, f := range r.Files {
					path := filepath.Join("testdata", "golden", name, side, f.Name)
					if updateGolden() {
						require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
						require.NoError(t, os.WriteFile(path, f.Content, 0o644))
						continue
					}
					want, err := os.ReadFile(path)
					require.NoError(t, err, "run go test -run TestRenderGolden -update to create it")
					assert.Equal(t, string(want), string(f.Content), path)
				}
			}
		})
	}
}

func TestRenderFilesAndIncludes(t *testing.T) {
	pbxNames := PBXFiles{Peer: "a_sip.conf", Dialplan: "a_ext.conf", SIPParent: "sip_custom.conf", ExtensionsParent: "extensions_custom.conf"}
	omlNames := OMLFiles{Wizard: "b_wiz.conf", Dialplan: "b_ext.conf", WizardParent: "w.conf", ExtensionsParent: "e.conf"}
	tr := seedTrunk(ScenarioLAN, AgentRoutingPattern)

	pbx, err := RenderPBX(tr, pbxNames)
	require.NoError(t, err)
	require.Len(t, pbx.Files, 2)
	assert.Equal(t, []string{"a_sip.conf", "a_ext.conf"}, []string{pbx.Files[0].Name, pbx.Files[1].Name})
	assert.Equal(t, []Include{
		{Parent: "sip_custom.conf", Line: "#include a_sip.conf"},
		{Parent: "extensions_custom.conf", Line: "#include a_ext.conf"},
	}, pbx.Includes)

	oml, err := RenderOML(tr, omlNames)
	require.NoError(t, err)
	require.Len(t, oml.Files, 2)
	assert.Equal(t, []string{"b_wiz.conf", "b_ext.conf"}, []string{oml.Files[0].Name, oml.Files[1].Name})
	assert.Equal(t, []Include{
		{Parent: "w.conf", Line: "#include b_wiz.conf"},
		{Parent: "e.conf", Line: "#include b_ext.conf"},
	}, oml.Includes)
}

func TestRenderDialplanRoutes(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Trunk)
		want    []string // lines that must be in the PBX dialplan
		notWant []string // substrings that must not be
	}{
		{
			name: "pattern routing: one route for every agent",
			edit: func(tr *Trunk) {},
			want: []string{
				"exten => 5000,1,Dial(SIP/omnileads/098098)",
				"exten => 098099,1,Dial(SIP/omnileads/098099)",
				"exten => _1XXXX.,1,Dial(SIP/omnileads/${EXTEN})",
				"exten => 55555,1,Hangup(1)",
			},
			notWant: []string{"10061", "Adrian"},
		},
		{
			name: "per agent: local number and dial number, name in the comment",
			edit: func(tr *Trunk) { tr.AgentRouting = AgentRoutingPerAgent },
			want: []string{
				"; agent 1 (Adrian Belew) SIP 1006",
				"exten => 10061,1,Dial(SIP/omnileads/10061)",
				"; agent 2 (Mikael Ackerfeldt) SIP 1007",
				"exten => 2002,1,Dial(SIP/omnileads/10072)",
			},
			notWant: []string{"_1XXXX."},
		},
		{
			name:    "per agent without a name",
			edit:    func(tr *Trunk) { tr.AgentRouting, tr.Agents[0].Name = AgentRoutingPerAgent, "" },
			want:    []string{"; agent 1 SIP 1006", "exten => 10061,1,Dial(SIP/omnileads/10061)"},
			notWant: []string{"agent 1 ("},
		},
		{
			name:    "no agents, no agent lines",
			edit:    func(tr *Trunk) { tr.Agents = nil },
			want:    []string{"exten => 5000,1,Dial(SIP/omnileads/098098)"},
			notWant: []string{"agent", "_1XXXX."},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := seedTrunk(ScenarioLAN, AgentRoutingPattern)
			tc.edit(&tr)
			pbx, _ := mustRender(t, tr)
			lines := strings.Split(string(pbx.Files[1].Content), "\n")
			for _, w := range tc.want {
				assert.Contains(t, lines, w)
			}
			for _, nw := range tc.notWant {
				assert.NotContains(t, string(pbx.Files[1].Content), nw)
			}
		})
	}
}

// TestRenderedText checks what Asterisk's config parser needs of every file of every
// golden case: LF endings, a final newline, no trailing blanks, the header, no block
// comment opener, no directive, and the secret only where it belongs.
func TestRenderedText(t *testing.T) {
	secretKeys := map[string]bool{"secret": true, "inbound_auth/password": true, "outbound_auth/password": true}
	for name, tr := range goldenCases() {
		pbx, oml := mustRender(t, tr)
		for side, r := range map[string]Rendered{"pbx": pbx, "oml": oml} {
			for _, f := range r.Files {
				t.Run(name+"/"+side+"/"+f.Name, func(t *testing.T) {
					c := string(f.Content)
					require.True(t, strings.HasSuffix(c, "\n"), "final newline")
					assert.NotContains(t, c, "\r")
					assert.NotContains(t, c, ";--")
					lines := strings.Split(strings.TrimSuffix(c, "\n"), "\n")
					require.Greater(t, len(lines), 3)
					assert.True(t, strings.HasPrefix(lines[0], "; Generated by pbxfleet for site bsas-1 ("+side+"), revision "))
					assert.True(t, strings.HasPrefix(lines[1], "; hand edits as drift."))
					for i, l := range lines {
						assert.Equal(t, strings.TrimRight(l, " \t"), l, "trailing blank on line %d", i+1)
						assert.False(t, strings.HasPrefix(l, "#"), "directive on line %d", i+1)
						if strings.Contains(l, tr.Secret) {
							k, _, _ := strings.Cut(l, "=")
							assert.True(t, secretKeys[k], "secret on line %d: %s", i+1, k)
						}
					}
					rev, ok := ManagedHeaderRevision(f.Content)
					assert.True(t, ok)
					assert.Equal(t, tr.Revision, rev)
				})
			}
		}
	}
}

func TestRenderDeterministic(t *testing.T) {
	tr := seedTrunk(ScenarioDocker, AgentRoutingPerAgent)
	pbx1, oml1 := mustRender(t, tr)
	pbx2, oml2 := mustRender(t, seedTrunk(ScenarioDocker, AgentRoutingPerAgent))
	assert.Equal(t, pbx1, pbx2)
	assert.Equal(t, oml1, oml2)
}

func TestRenderIPv6RemoteHosts(t *testing.T) {
	tr := seedTrunk(ScenarioLAN, AgentRoutingPattern)
	tr.PBXAddress = "2001:db8::2"
	_, oml := mustRender(t, tr)
	assert.Contains(t, strings.Split(string(oml.Files[0].Content), "\n"), "remote_hosts=[2001:db8::2]:5060")
}

// hostileFragments are pieces of text that would change what Asterisk's config
// parser or a dial string reads (docs/asterisk.md#unsafe-values, AST-2010-002).
var hostileFragments = []string{
	"\n", "\r", "\n[evil]\ntype=friend", "[", "]", ";", ";--", "#include /etc/passwd", "#exec id", "&", "$",
	"${SHELL}", "(", ")", ",", "|", "{", "}", "\"", "\t", "\x00", " ",
}

func TestCheckTrunkHostileValues(t *testing.T) {
	fields := []struct {
		field string
		set   func(*Trunk, string)
		get   func(Trunk) string
	}{
		{"site", func(t *Trunk, v string) { t.Site = v }, func(t Trunk) string { return t.Site }},
		{"scenario", func(t *Trunk, v string) { t.Scenario = Scenario(v) }, func(t Trunk) string { return string(t.Scenario) }},
		{"pbx_address", func(t *Trunk, v string) { t.PBXAddress = v }, func(t Trunk) string { return t.PBXAddress }},
		{"oml_address", func(t *Trunk, v string) { t.OMLAddress = v }, func(t Trunk) string { return t.OMLAddress }},
		{"oml_transport", func(t *Trunk, v string) { t.OMLTransport = v }, func(t Trunk) string { return t.OMLTransport }},
		{"pbx_trunk_name", func(t *Trunk, v string) { t.PBXTrunkName = v }, func(t Trunk) string { return t.PBXTrunkName }},
		{"oml_trunk_name", func(t *Trunk, v string) { t.OMLTrunkName = v }, func(t Trunk) string { return t.OMLTrunkName }},
		{"pbx_user", func(t *Trunk, v string) { t.PBXUser = v }, func(t Trunk) string { return t.PBXUser }},
		{"oml_user", func(t *Trunk, v string) { t.OMLUser = v }, func(t Trunk) string { return t.OMLUser }},
		{"secret", func(t *Trunk, v string) { t.Secret = v }, func(t Trunk) string { return t.Secret }},
		{"pbx_codecs[0]", func(t *Trunk, v string) { t.PBXCodecs[0] = v }, func(t Trunk) string { return t.PBXCodecs[0] }},
		{"oml_codecs[1]", func(t *Trunk, v string) { t.OMLCodecs[1] = v }, func(t Trunk) string { return t.OMLCodecs[1] }},
		{"dids[0].number", func(t *Trunk, v string) { t.DIDs[0].Number = v }, func(t Trunk) string { return t.DIDs[0].Number }},
		{"dids[0].extension", func(t *Trunk, v string) { t.DIDs[0].Extension = v }, func(t Trunk) string { return t.DIDs[0].Extension }},
		{"agents[1].id", func(t *Trunk, v string) { t.Agents[1].ID = v }, func(t Trunk) string { return t.Agents[1].ID }},
		{"agents[1].sip_number", func(t *Trunk, v string) { t.Agents[1].SIPNumber = v }, func(t Trunk) string { return t.Agents[1].SIPNumber }},
		{"agents[1].name", func(t *Trunk, v string) { t.Agents[1].Name = v }, func(t Trunk) string { return t.Agents[1].Name }},
		{"agents[1].extension", func(t *Trunk, v string) { t.Agents[1].Extension = v }, func(t Trunk) string { return t.Agents[1].Extension }},
		{"agent_routing", func(t *Trunk, v string) { t.AgentRouting = AgentRouting(v) }, func(t Trunk) string { return string(t.AgentRouting) }},
		{"agent_pattern", func(t *Trunk, v string) { t.AgentPattern = v }, func(t Trunk) string { return t.AgentPattern }},
		{"probe_number", func(t *Trunk, v string) { t.ProbeNumber = v }, func(t Trunk) string { return t.ProbeNumber }},
	}
	for _, f := range fields {
		for _, frag := range hostileFragments {
			valid := f.get(seedTrunk(ScenarioLAN, AgentRoutingPerAgent))
			values := []string{frag + valid, valid + frag}
			// [ ] and - are character classes inside a dialplan pattern; only a leading
			// one (no "_" first) is hostile there.
			if f.field == "agent_pattern" && (frag == "[" || frag == "]") {
				values = values[:1]
			}
			// A name is a label, which may hold spaces: it only reaches a comment.
			if f.field == "agents[1].name" && frag == " " {
				continue
			}
			for _, v := range values {
				t.Run(fmt.Sprintf("%s=%q", f.field, v), func(t *testing.T) {
					tr := seedTrunk(ScenarioLAN, AgentRoutingPerAgent)
					f.set(&tr, v)
					err := CheckTrunk(tr)
					require.Error(t, err)
					assert.ErrorIs(t, err, ErrUnsafeValue)
					assert.Contains(t, err.Error(), f.field+": unsafe value: ")
					if f.field == "secret" {
						assert.NotContains(t, err.Error(), testSecret, "the secret is never echoed")
					}

					pbx, err := RenderPBX(tr, DefaultPBXFiles())
					assert.ErrorIs(t, err, ErrUnsafeValue)
					assert.Contains(t, err.Error(), f.field+": ")
					assert.Equal(t, Rendered{}, pbx)
					oml, err := RenderOML(tr, DefaultOMLFiles())
					assert.ErrorIs(t, err, ErrUnsafeValue)
					assert.Equal(t, Rendered{}, oml)
				})
			}
		}
	}
}

func TestCheckTrunk(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*Trunk)
		fields []string // every field the error must name, in order; none means valid
		is     error
	}{
		{name: "seed site", edit: func(*Trunk) {}},
		{name: "docker without OML address", edit: func(t *Trunk) { t.Scenario, t.OMLAddress = ScenarioDocker, "" }},
		{name: "host names", edit: func(t *Trunk) { t.PBXAddress, t.OMLAddress = "pbx.example.com", "oml-1.example.com" }},
		{name: "no DIDs, no agents, no routing", edit: func(t *Trunk) { t.DIDs, t.Agents, t.AgentRouting, t.AgentPattern = nil, nil, "", "" }},
		{name: "per agent needs no pattern", edit: func(t *Trunk) { t.AgentPattern = "" }},
		{name: "lan without OML address", edit: func(t *Trunk) { t.OMLAddress = "" }, fields: []string{"oml_address"}, is: ErrUnsafeValue},
		{name: "bad ports", edit: func(t *Trunk) { t.PBXPort, t.OMLPort = 0, 65536 }, fields: []string{"pbx_port", "oml_port"}, is: ErrUnsafeValue},
		{name: "qualify off", edit: func(t *Trunk) { t.QualifyFrequency = 0 }, fields: []string{"qualify_frequency"}, is: ErrUnsafeValue},
		{name: "qualify too long", edit: func(t *Trunk) { t.QualifyFrequency = 86401 }, fields: []string{"qualify_frequency"}, is: ErrUnsafeValue},
		{name: "OML trunk name with hyphen", edit: func(t *Trunk) { t.OMLTrunkName = "issabel-1" }, fields: []string{"oml_trunk_name"}, is: ErrUnsafeValue},
		{name: "no PBX codecs", edit: func(t *Trunk) { t.PBXCodecs = nil }, fields: []string{"pbx_codecs"}, is: ErrInvalidTrunk},
		{name: "codec list in one element", edit: func(t *Trunk) { t.OMLCodecs = []string{"alaw,ulaw"} }, fields: []string{"oml_codecs[0]"}, is: ErrUnsafeValue},
		{name: "empty secret", edit: func(t *Trunk) { t.Secret = "" }, fields: []string{"secret"}, is: ErrUnsafeValue},
		{name: "empty site", edit: func(t *Trunk) { t.Site = "" }, fields: []string{"site"}, is: ErrUnsafeValue},
		{name: "pattern routing without pattern", edit: func(t *Trunk) { t.AgentRouting, t.AgentPattern = AgentRoutingPattern, "" }, fields: []string{"agent_pattern"}, is: ErrUnsafeValue},
		{name: "agents without routing", edit: func(t *Trunk) { t.AgentRouting = "" }, fields: []string{"agent_routing"}, is: ErrUnsafeValue},
		// Whoever built the trunk (the planner, or a client of the orchestrator
		// that skipped it), the agent refuses a route that would send every
		// number dialled on the PBX to OMniLeads.
		{name: "catch-all agent pattern", edit: func(t *Trunk) { t.AgentRouting, t.AgentPattern = AgentRoutingPattern, "_X." }, fields: []string{"agent_pattern"}, is: ErrCatchAllPattern},
		{name: "catch-all _! (zero or more of anything)", edit: func(t *Trunk) { t.AgentRouting, t.AgentPattern = AgentRoutingPattern, "_!" }, fields: []string{"agent_pattern"}, is: ErrCatchAllPattern},
		{name: "agent pattern within the agents' range", edit: func(t *Trunk) { t.AgentRouting, t.AgentPattern = AgentRoutingPattern, "_10XX." }},
		{
			name:   "two DIDs on one local number",
			edit:   func(t *Trunk) { t.DIDs[1].Extension = "5000" },
			fields: []string{"dids[1]"}, is: ErrInvalidTrunk,
		},
		{
			name:   "agent extension taken by a DID",
			edit:   func(t *Trunk) { t.Agents[1].Extension = "098099" },
			fields: []string{"agents[1]"}, is: ErrInvalidTrunk,
		},
		{
			name:   "probe number is a DID",
			edit:   func(t *Trunk) { t.ProbeNumber = "098098" },
			fields: []string{"probe_number"}, is: ErrInvalidTrunk,
		},
		{
			name:   "probe number is an agent's number on OML",
			edit:   func(t *Trunk) { t.ProbeNumber = "10061" },
			fields: []string{"probe_number"}, is: ErrInvalidTrunk,
		},
		{
			name: "every problem at once",
			edit: func(t *Trunk) {
				t.Site, t.PBXAddress, t.Secret, t.Agents[0].Name, t.ProbeNumber = "Bad Site", "1.2.3.4;x", "a b", "x\ny", ""
			},
			fields: []string{"site", "pbx_address", "secret", "agents[0].name", "probe_number"},
			is:     ErrUnsafeValue,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := seedTrunk(ScenarioLAN, AgentRoutingPerAgent)
			tc.edit(&tr)
			err := CheckTrunk(tr)
			if len(tc.fields) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.is)
			var joined interface{ Unwrap() []error }
			require.True(t, errors.As(err, &joined))
			var got []string
			for _, e := range joined.Unwrap() {
				name, _, _ := strings.Cut(e.Error(), ":")
				got = append(got, name)
			}
			assert.Equal(t, tc.fields, got)
		})
	}
}

func TestRenderRejectsFileNames(t *testing.T) {
	tr := seedTrunk(ScenarioLAN, AgentRoutingPattern)
	for _, bad := range []string{"", "x.conf\n#exec id", "../sip.conf", "/etc/passwd", "a b.conf", "x;y.conf"} {
		t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
			names := DefaultPBXFiles()
			names.Peer = bad
			r, err := RenderPBX(tr, names)
			assert.ErrorIs(t, err, ErrUnsafeValue)
			assert.Contains(t, err.Error(), "files.peer: ")
			assert.Equal(t, Rendered{}, r)

			onames := DefaultOMLFiles()
			onames.WizardParent = bad
			r, err = RenderOML(tr, onames)
			assert.ErrorIs(t, err, ErrUnsafeValue)
			assert.Contains(t, err.Error(), "files.wizard_parent: ")
			assert.Equal(t, Rendered{}, r)
		})
	}
	names := DefaultPBXFiles()
	names.Dialplan = names.Peer
	_, err := RenderPBX(tr, names)
	assert.ErrorIs(t, err, ErrInvalidTrunk)
}

func TestManagedHeaderRevision(t *testing.T) {
	pbx, _ := mustRender(t, seedTrunk(ScenarioLAN, AgentRoutingPattern))
	tests := []struct {
		name    string
		content string
		rev     uint64
		ok      bool
	}{
		{name: "rendered file", content: string(pbx.Files[0].Content), rev: 7, ok: true},
		{name: "CRLF after a hand edit", content: strings.ReplaceAll(string(pbx.Files[1].Content), "\n", "\r\n"), rev: 7, ok: true},
		{name: "comment added above", content: "; edited by bob\n\n" + string(pbx.Files[0].Content), rev: 7, ok: true},
		{name: "largest revision", content: "; Generated by pbxfleet for site s (oml), revision 18446744073709551615. Do not edit\n", rev: 18446744073709551615, ok: true},
		{name: "revision overflows", content: "; Generated by pbxfleet for site s (oml), revision 18446744073709551616. Do not edit\n"},
		{name: "header removed", content: "[omnileads]\ntype=friend\n"},
		{name: "header below a section", content: "[omnileads]\n; Generated by pbxfleet for site s (pbx), revision 3. x\n"},
		{name: "unknown role", content: "; Generated by pbxfleet for site s (web), revision 3. x\n"},
		{name: "no revision", content: "; Generated by pbxfleet for site s (pbx), revision . x\n"},
		{name: "empty", content: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rev, ok := ManagedHeaderRevision([]byte(tc.content))
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.rev, rev)
		})
	}
}

func TestMask(t *testing.T) {
	pbx, oml := mustRender(t, seedTrunk(ScenarioLAN, AgentRoutingPattern))
	tests := []struct {
		name    string
		content string
		secret  string
		want    string
	}{
		{name: "every occurrence", content: "a=s3\nb=s3s3\n", secret: "s3", want: "a=********\nb=****************\n"},
		{name: "empty secret masks nothing", content: "a=b\n", secret: "", want: "a=b\n"},
		{name: "secret absent", content: "a=b\n", secret: "zz", want: "a=b\n"},
		{name: "regexp characters are literal", content: "p=a.b+c\np=axbbc\n", secret: "a.b+c", want: "p=********\np=axbbc\n"},
		{name: "peer file", content: string(pbx.Files[0].Content), secret: testSecret,
			want: strings.ReplaceAll(string(pbx.Files[0].Content), "secret="+testSecret, "secret=********")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.content)
			got := Mask(in, tc.secret)
			assert.Equal(t, tc.want, string(got))
			assert.Equal(t, tc.content, string(in), "input untouched")
		})
	}
	masked := string(Mask(oml.Files[0].Content, testSecret))
	assert.NotContains(t, masked, testSecret)
	assert.Contains(t, masked, "inbound_auth/password=********\n")
	assert.Contains(t, masked, "outbound_auth/password=********\n")
}

// BenchmarkRenderSite renders both sides of one large site (40 DIDs, 300 agents
// with per-agent extensions), as the planner does for every site of a plan.
func BenchmarkRenderSite(b *testing.B) {
	tr := seedTrunk(ScenarioCloud, AgentRoutingPerAgent)
	tr.DIDs, tr.Agents = nil, nil
	for i := range 40 {
		tr.DIDs = append(tr.DIDs, DID{Number: fmt.Sprintf("0980%02d", i), Extension: fmt.Sprintf("50%02d", i)})
	}
	for i := range 300 {
		tr.Agents = append(tr.Agents, Agent{ID: fmt.Sprint(i + 1), SIPNumber: fmt.Sprint(1000 + i), Name: fmt.Sprintf("Agent %d", i)})
	}
	pbxNames, omlNames := DefaultPBXFiles(), DefaultOMLFiles()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := RenderPBX(tr, pbxNames); err != nil {
			b.Fatal(err)
		}
		if _, err := RenderOML(tr, omlNames); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCheckOMLRoute: the outbound route is checked with OMniLeads' own
// validators, every problem at once.
func TestCheckOMLRoute(t *testing.T) {
	ok := OMLRoute{Name: "to_pbx", RingTime: 25, DialOptions: "Tt", Patterns: []DialPattern{{Pattern: "X."}, {Prefix: "9", Prepend: "+54", Pattern: "NXXXXXX"}}}
	if err := CheckOMLRoute(ok); err != nil {
		t.Fatalf("valid route refused: %v", err)
	}
	bad := OMLRoute{Name: "to pbx", RingTime: 0, DialOptions: "Tg", Patterns: []DialPattern{{Prefix: "9a", Pattern: "X;"}}, InboundCampaign: "a-b"}
	err := CheckOMLRoute(bad)
	if err == nil {
		t.Fatal("invalid route accepted")
	}
	for _, want := range []string{`outbound route name "to pbx"`, "ring time 0", `dial options "Tg"`, `prefix "9a"`, `pattern 1: "X;"`, `inbound campaign "a-b"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q missing from %v", want, err)
		}
	}
	if err := CheckOMLRoute(OMLRoute{Name: "r", RingTime: 1, DialOptions: "T"}); err == nil || !strings.Contains(err.Error(), "at least one dial pattern") {
		t.Errorf("a route without patterns: %v", err)
	}
}
