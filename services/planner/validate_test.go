package planner

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestValidationRejects feeds one bad input per case and checks the exact path
// of every problem (no more, no fewer), a phrase of the message, and that no
// plan comes out.
func TestValidationRejects(t *testing.T) {
	s1 := func(extra string) string { return lanSite("s1", extra) }
	tests := []struct {
		name     string
		yaml     string
		paths    []string
		contains string
	}{
		// The file as a whole.
		{"version missing", strings.Replace(fleet("", s1("")), "version: 1\n", "", 1), []string{"version"}, "required"},
		{"version unknown", strings.Replace(fleet("", s1("")), "version: 1", "version: 2", 1), []string{"version"}, "version 1, not 2"},
		{"no sites", fleet(""), []string{"sites"}, "no sites"},

		// Site ids.
		{"site id missing", fleet("", `{pbx: {address: 10.0.0.1}, oml: {address: 10.0.0.2}}`), []string{"sites[#0].id"}, "required"},
		{"site id upper case", fleet("", lanSite("Bsas-1", "")), []string{"sites[#0].id"}, "a-z, 0-9"},
		{"site id too long", fleet("", lanSite(strings.Repeat("a", 64), "")), []string{"sites[#0].id"}, "1 to 63"},
		{"duplicate site id", fleet("", s1(""), lanSite("s1", "")), []string{"sites[s1].id"}, "sites[#0] has it too"},

		// Scenario, addresses, ports.
		{"scenario", fleet("", s1("scenario: vpn")), []string{"sites[s1].scenario"}, "lan, cloud or docker"},
		{"default scenario reported once", fleet("scenario: vpn", s1(""), lanSite("s2", "")), []string{"defaults.scenario"}, "not a scenario"},
		{"pbx address unsafe", fleet("", `{id: s1, pbx: {address: "10.0.0.1\n[evil]"}, oml: {address: 10.0.0.2}}`), []string{"sites[s1].pbx.address"}, "IP or DNS name"},
		{"pbx address injection", fleet("", `{id: s1, pbx: {address: "pbx;#exec rm"}, oml: {address: 10.0.0.2}}`), []string{"sites[s1].pbx.address"}, "unsafe value"},
		{"two sites on one pbx", fleet("", s1(""), lanSite("s2", "pbx: {address: 10.0.0.1}")), []string{"sites[s2].pbx.address"}, "10.0.0.1 is also sites[s1].pbx.address: two sites cannot share a host"},
		{"a site's oml on another's pbx", fleet("", s1(""), lanSite("s2", "oml: {address: 10.0.0.1}")), []string{"sites[s2].oml.address"}, "is also sites[s1].pbx.address"},
		{"two sites with the same addresses", fleet("", s1(""), lanSite("s2", "pbx: {address: 10.0.0.1}, oml: {address: 10.0.0.2}")), []string{"sites[s2].pbx.address", "sites[s2].oml.address"}, "two sites cannot share a host"},
		{"one host name in two cases", fleet("", s1("oml: {address: oml.example.com}"), lanSite("s2", "oml: {address: OML.example.com}")), []string{"sites[s2].oml.address"}, "is also sites[s1].oml.address"},
		{"lan with omnileads on the pbx address", fleet("", s1("oml: {address: 10.0.0.1}")), []string{"sites[s1].oml.address"}, "scenario lan runs OMniLeads on a host of its own"},
		{"cloud with omnileads on the pbx address", fleet("", s1("scenario: cloud, oml: {address: 10.0.0.1}")), []string{"sites[s1].oml.address"}, "scenario cloud runs OMniLeads on a host of its own"},
		{"two docker sites on one host", fleet("", `{id: d1, scenario: docker, pbx: {address: 10.0.5.1}}`, `{id: d2, scenario: docker, pbx: {address: 10.0.5.1}}`), []string{"sites[d2].pbx.address"}, "is also sites[d1].pbx.address"},
		{"pbx address broadcast", fleet("", `{id: s1, pbx: {address: 255.255.255.255}, oml: {address: 10.0.0.2}}`), []string{"sites[s1].pbx.address"}, "not a host address"},
		{"a codec asterisk does not know", fleet("", s1("pbx: {address: 10.0.0.1, codecs: [alaw, opus9000]}")), []string{"sites[s1].pbx.codecs"}, `codec (an Asterisk audio codec`},
		{"pbx address unspecified", fleet("", `{id: s1, pbx: {address: 0.0.0.0}, oml: {address: 10.0.0.2}}`), []string{"sites[s1].pbx.address"}, "not a host address"},
		{"pbx address missing", fleet("", `{id: s1, oml: {address: 10.0.0.2}}`), []string{"sites[s1].pbx.address"}, "required"},
		{"pbx address in defaults", fleet("pbx: {address: 10.0.0.1}", s1("")), []string{"defaults.pbx.address"}, "per site"},
		{"oml address missing in lan", fleet("", `{id: s1, pbx: {address: 10.0.0.1}}`), []string{"sites[s1].oml.address"}, "required in scenario lan"},
		{"oml address missing in cloud", fleet("", `{id: s1, scenario: cloud, pbx: {address: 10.0.0.1}}`), []string{"sites[s1].oml.address"}, "scenario cloud"},
		{"oml address elsewhere in docker", fleet("", `{id: s1, scenario: docker, pbx: {address: 10.0.0.1}, oml: {address: 10.0.0.9}}`), []string{"sites[s1].oml.address"}, "on the PBX host"},
		{"oml address bad host", fleet("", `{id: s1, pbx: {address: 10.0.0.1}, oml: {address: "-oml-.example"}}`), []string{"sites[s1].oml.address"}, "IP or DNS name"},
		{"pbx port out of range", fleet("", s1("pbx: {address: 10.0.0.1, port: 70000}")), []string{"sites[s1].pbx.port"}, "1-65535"},
		{"default pbx port zero", fleet("pbx: {port: 0}", s1("")), []string{"defaults.pbx.port"}, "1-65535"},

		// Names and users: everything that reaches a section name or a dial string.
		{"pbx trunk name with newline", fleet(`pbx: {trunk_name: "omni\n[x]"}`, s1("")), []string{"defaults.pbx.trunk_name"}, "unsafe value"},
		{"oml trunk name with hyphen", fleet("", s1("oml: {address: 10.0.0.2, trunk_name: issabel-1}")), []string{"sites[s1].oml.trunk_name"}, "letters, digits, _"},
		{"pbx user", fleet("", s1("pbx: {address: 10.0.0.1, user: 'is sabel'}")), []string{"sites[s1].pbx.user"}, "unsafe value"},
		{"oml user must be the pbx trunk name", fleet("", s1("oml: {address: 10.0.0.2, user: issabel}")), []string{"sites[s1].oml.user"}, `must equal pbx.trunk_name "omnileads"`},
		{"oml user from defaults", fleet("oml: {user: someone}", s1("")), []string{"sites[s1].oml.user"}, "(set in defaults.oml.user)"},
		{"oml user vs a site's trunk name", fleet("oml: {user: omnileads}", s1("pbx: {address: 10.0.0.1, trunk_name: oml_trunk}")), []string{"sites[s1].oml.user"}, `"oml_trunk"`},

		// Codecs.
		{"bad codec", fleet("", s1("pbx: {address: 10.0.0.1, codecs: [alaw, 'g7;29']}")), []string{"sites[s1].pbx.codecs"}, "[1]: unsafe value: codec"},
		{"empty codecs", fleet("oml: {codecs: []}", s1("")), []string{"defaults.oml.codecs"}, "at least one codec"},
		{"codec twice", fleet("", s1("oml: {address: 10.0.0.2, codecs: [alaw, alaw]}")), []string{"sites[s1].oml.codecs"}, "listed twice"},
		{"no common codec", fleet("", s1("oml: {address: 10.0.0.2, codecs: [ulaw, g729]}")), []string{"sites[s1].oml.codecs"}, "no codec in common"},

		// OML runtime and transports.
		{"profile unknown", fleet("", s1("oml: {address: 10.0.0.2, profile: '3.x'}")), []string{"sites[s1].oml.profile"}, "1.x or 2.x"},
		{"profile 2.x on the pbx port in docker", fleet("", `{id: s1, scenario: docker, pbx: {address: 10.0.0.1}, oml: {profile: "2.x"}}`),
			[]string{"sites[s1].oml.profile"}, "where chan_sip listens"},
		{"deployment unknown", fleet("", s1("oml: {address: 10.0.0.2, deployment: k8s}")), []string{"sites[s1].oml.deployment"}, "host, docker or podman"},
		{"docker scenario on host deployment", fleet("oml: {deployment: host}", `{id: s1, scenario: docker, pbx: {address: 10.0.0.1}}`),
			[]string{"sites[s1].oml.deployment"}, "(set in defaults.oml.deployment)"},
		{"container name", fleet("", s1("oml: {address: 10.0.0.2, deployment: docker, container: 'oml asterisk'}")), []string{"sites[s1].oml.container"}, "container name"},
		{"qualify off", fleet("oml: {qualify_frequency: 0}", s1("")), []string{"defaults.oml.qualify_frequency"}, "1-86400"},

		// Routing and patterns.
		{"agent routing", fleet("", s1("agent_routing: all")), []string{"sites[s1].agent_routing"}, "pattern or per_agent"},
		{"agent pattern unsafe", fleet("", s1("agent_pattern: '_1XXX.,1,System(x)'")), []string{"sites[s1].agent_pattern"}, "unsafe value"},
		{"agent pattern unclosed set", fleet("", s1("agent_pattern: '_1[0-3XXX.'")), []string{"sites[s1].agent_pattern"}, "[ without ]"},
		{"agent pattern wildcard not last", fleet("", s1("agent_pattern: '_1.X'")), []string{"sites[s1].agent_pattern"}, "must be the last"},
		{"agent pattern catches everything", fleet("", s1("agent_pattern: _X.")), []string{"sites[s1].agent_pattern"}, "_X. also matches numbers that are no agent's, such as 00"},
		{"agent pattern catches everything, even nothing", fleet("", s1("agent_pattern: _!")), []string{"sites[s1].agent_pattern"}, "_! also matches numbers that are no agent's"},
		{"agent pattern catches every number", fleet("", s1("agent_pattern: _.")), []string{"sites[s1].agent_pattern"}, "no agent's"},
		{"agent pattern catches 3 digits", fleet("", s1("agent_pattern: _1XX.")), []string{"sites[s1].agent_pattern"}, "such as 1000"},
		{"agent pattern in defaults catches everything", fleet("agent_pattern: _X.", s1("")), []string{"defaults.agent_pattern"}, "no agent's"},
		{"agent pattern misses agents", fleet("agent_pattern: _1XXXX.", s1("")), []string{"sites[s1].agent_pattern"}, "the dial numbers of agents[0] (10061), agents[1] (10072)"},

		// DIDs.
		{"did number not digits", fleet("", s1(`dids: [{number: "0980-98"}]`)), []string{"sites[s1].dids[0].number"}, "digits only"},
		{"did number missing", fleet("", s1(`dids: [{extension: "5000"}]`)), []string{"sites[s1].dids[0].number"}, "required"},
		{"did extension not digits", fleet("", s1(`dids: [{number: "098098", extension: "5000,1"}]`)), []string{"sites[s1].dids[0].extension"}, "digits only"},
		{"duplicate did", fleet("", s1(`dids: [{number: "098098", extension: "5000"}, {number: "098098", extension: "5001"}]`)),
			[]string{"sites[s1].dids[1].number"}, "dids[0] has it too"},
		{"third did named by index", fleet("", s1(`dids: [{number: "1"}, {number: "2"}, {number: "3;x"}]`)), []string{"sites[s1].dids[2].number"}, "digits only"},
		{"duplicate local extension", fleet("", s1(`dids: [{number: "098098", extension: "5000"}, {number: "098099", extension: "5000"}]`)),
			[]string{"sites[s1].dids[1].extension"}, "local number 5000 is already dids[0]'s local number"},
		{"did without extension clashes with an extension", fleet("", s1(`dids: [{number: "098098", extension: "5000"}, {number: "5000"}]`)),
			[]string{"sites[s1].dids[0].extension"}, "is the number of dids[1]"},
		{"extension is an agent number", fleet("", s1(`dids: [{number: "098098", extension: "10061"}]`)),
			[]string{"sites[s1].dids[0].extension"}, "dial number of agents[0]"},
		{"did is an agent number", fleet("", s1(`dids: [{number: "10072"}]`)), []string{"sites[s1].dids[0].number"}, "send the call to that agent"},

		// Agents.
		{"agent name unsafe", fleet("", s1(`agents: [{id: 1, sip_number: 1006, name: "Adrian;Belew"}]`)), []string{"sites[s1].agents[0].name"}, "label"},
		{"agent id leading zero", fleet("", s1(`agents: [{id: "01", sip_number: 1006}]`)), []string{"sites[s1].agents[0].id"}, "without leading zeros"},
		{"agent id missing", fleet("", s1(`agents: [{sip_number: 1006}]`)), []string{"sites[s1].agents[0].id"}, "required"},
		{"agent sip number not OML's", fleet("", s1(`agents: [{id: 1, sip_number: 2006}]`)), []string{"sites[s1].agents[0].sip_number"}, "four digits starting with 1"},
		{"duplicate agent id", fleet("", s1(`agents: [{id: 1, sip_number: 1006}, {id: 1, sip_number: 1007}]`)), []string{"sites[s1].agents[1].id"}, "agents[0] has it too"},
		{"duplicate sip number", fleet("", s1(`agents: [{id: 1, sip_number: 1006}, {id: 2, sip_number: 1006}]`)), []string{"sites[s1].agents[1].sip_number"}, "agents[0] has it too"},
		{"per-agent extension is a did's local number", fleet("", s1(`agent_routing: per_agent, agents: [{id: 1, sip_number: 1006, extension: 5000}]`)),
			[]string{"sites[s1].agents[0].extension"}, "already dids[0]'s local number"},
		{"per-agent extension is a did", fleet("", s1(`agent_routing: per_agent, agents: [{id: 1, sip_number: 1006, extension: "098098"}]`)),
			[]string{"sites[s1].agents[0].extension"}, "is the number of dids[0]"},
		{"per-agent extension is another agent", fleet("", s1(`agent_routing: per_agent, agents: [{id: 1, sip_number: 1006, extension: 10072}, {id: 2, sip_number: 1007}]`)),
			[]string{"sites[s1].agents[0].extension"}, "dial number of agents[1]"},

		// The probe number.
		{"probe not digits", fleet("probe_number: '9999#'", s1("")), []string{"defaults.probe_number"}, "digits only"},
		{"probe is a did", fleet("", s1(`probe_number: "098098"`)), []string{"sites[s1].probe_number"}, "dids[0].number"},
		{"probe is an agent", fleet(`probe_number: "10061"`, s1("")), []string{"sites[s1].probe_number"}, "(set in defaults.probe_number)"},
		{"probe is a local extension", fleet("", s1(`probe_number: "5000"`)), []string{"sites[s1].probe_number"}, "dids[0]'s local number"},

		// Secrets.
		{"secret missing", "version: 1\nsites:\n  - " + s1(""), []string{"sites[s1].secret"}, "required"},
		{"secret env unset", fleet("", s1("secret: env:NOT_SET_ANYWHERE")), []string{"sites[s1].secret"}, "NOT_SET_ANYWHERE is not set"},
		{"secret env empty", fleet("", s1("secret: env:EMPTY_SECRET")), []string{"sites[s1].secret"}, "empty"},
		{"secret env bad name", fleet("", s1("secret: 'env:A B'")), []string{"sites[s1].secret"}, "not an environment variable name"},
		{"secret file missing", fleet("", s1("secret: file:no/such.secret")), []string{"sites[s1].secret"}, "no such file"},
		{"default secret unset, reported once", strings.Replace(fleet("", s1(""), lanSite("s2", "")), "env:PBXFLEET_SECRET", "env:NOT_SET", 1),
			[]string{"defaults.secret"}, "NOT_SET is not set"},
		{"secret unsafe alphabet", fleet("", s1("secret: 'long secret; with [bad] chars'")), []string{"sites[s1].secret"}, "secret (1-128 of"},
		{"weak secret from the seed", fleet("", s1("secret: env:WEAK_SECRET")), []string{"sites[s1].secret"}, "well-known"},
		{"weak secret seed spelling", fleet("", s1("secret: issabelOML")), []string{"sites[s1].secret"}, "well-known"},
		{"short secret", fleet("", s1("secret: Xy7-kP2")), []string{"sites[s1].secret"}, "shorter than 12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := planYAML(tt.yaml, t.TempDir(), testOptions())
			require.Error(t, err)
			assert.Nil(t, plan, "nothing may be planned from an invalid spec")
			assert.ErrorIs(t, err, ErrInvalidSpec)
			assert.Equal(t, tt.paths, problemPaths(t, err))
			assert.Contains(t, err.Error(), tt.contains)
			assert.NotContains(t, err.Error(), testSecret)
			assert.NotContains(t, err.Error(), "Other.Secret-4471-xyz")
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			for _, p := range ve.Problems {
				assert.NotZero(t, p.Line, "problem %s has no line", p)
			}
		})
	}
}

func TestValidationReportsEveryProblemAtOnce(t *testing.T) {
	yaml := fleet("pbx: {port: 99999}",
		lanSite("s1", `dids: [{number: "1"}, {number: "2"}, {number: "x"}]`),
		`{id: BAD, pbx: {address: 10.0.0.1}}`,
		lanSite("s3", `oml: {address: 10.0.9.2, trunk_name: a-b}, probe_number: "5000"`),
	)
	_, err := Parse([]byte(yaml), t.TempDir(), testOptions())
	require.Error(t, err)
	assert.Equal(t, []string{
		"defaults.pbx.port",
		"sites[s1].dids[2].number",
		"sites[#1].id",
		"sites[#1].oml.address",
		"sites[s3].oml.trunk_name",
		"sites[s3].probe_number",
	}, problemPaths(t, err))
}

func TestValidationLines(t *testing.T) {
	yaml := `version: 1
defaults:
  secret: env:PBXFLEET_SECRET
sites:
  - id: s1
    pbx: {address: 10.0.0.1}
    oml: {address: 10.0.0.2}
    dids:
      - {number: "1"}
      - number: "2;x"
  - id: s1
    pbx:
      address: 10.0.0.3
`
	_, err := Parse([]byte(yaml), t.TempDir(), testOptions())
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	got := map[string]int{}
	for _, p := range ve.Problems {
		got[p.Path] = p.Line
	}
	assert.Equal(t, map[string]int{
		"sites[s1].dids[1].number": 10,
		"sites[s1].id":             11, // the second s1
		"sites[s1].oml.address":    11, // missing: the line of its site
	}, got)
}

func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "secrets"), 0o700))
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets", name), []byte(content), 0o600))
	}
	write("a.secret", "Fi1e-Secret.Value+42\n")
	write("crlf.secret", "Crlf-Secret.Value+42\r\n")
	write("space.secret", "Space Secret Value 42\n")
	abs := filepath.Join(dir, "secrets", "a.secret")

	tests := []struct {
		name   string
		ref    string
		want   string
		errSub string
	}{
		{"relative to the fleet file", "file:secrets/a.secret", "Fi1e-Secret.Value+42", ""},
		{"absolute", "file:" + abs, "Fi1e-Secret.Value+42", ""},
		{"windows line end", "file:secrets/crlf.secret", "Crlf-Secret.Value+42", ""},
		{"env", "env:OTHER_SECRET", "Other.Secret-4471-xyz", ""},
		{"unsafe content", "file:secrets/space.secret", "", "secret (1-128 of"},
		{"no path", "file:", "", "needs a path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := Parse([]byte(fleet("", lanSite("s1", "secret: '"+tt.ref+"'"))), dir, testOptions())
			if tt.errSub != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.errSub)
				assert.Equal(t, []string{"sites[s1].secret"}, problemPaths(t, err))
				assert.NotContains(t, err.Error(), "Space Secret")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, spec.Sites[0].Trunk.Secret)
			assert.Equal(t, tt.ref, spec.Sites[0].SecretSource)
		})
	}
}

func TestAcceptWeakSecrets(t *testing.T) {
	yaml := fleet("", lanSite("s1", "secret: env:WEAK_SECRET"))
	_, err := Parse([]byte(yaml), t.TempDir(), testOptions())
	require.ErrorIs(t, err, ErrInvalidSpec)
	assert.NotContains(t, err.Error(), "omnileads\"")

	opts := testOptions()
	opts.AcceptWeakSecrets = true
	spec, err := Parse([]byte(yaml), t.TempDir(), opts)
	require.NoError(t, err)
	require.Len(t, spec.Warnings, 1)
	assert.Equal(t, "sites[s1].secret", spec.Warnings[0].Path)
	assert.Contains(t, spec.Warnings[0].Msg, "weak secret")
	assert.Equal(t, "omnileads", spec.Sites[0].Trunk.Secret)
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		path     string
		contains string
	}{
		{"did taken for an agent call", fleet("", lanSite("s1", `dids: [{number: "10099"}]`)),
			"sites[s1].dids[0].number", "takes it for an agent call"},
		{"agent extension unused with pattern routing", fleet("", lanSite("s1", "agents: [{id: 1, sip_number: 1006, extension: 2001}]")),
			"sites[s1].agents[0].extension", "only with agent_routing per_agent"},
		{"literal secret", fleet("", lanSite("s1", "secret: Lit3ral-Secret.Value")),
			"sites[s1].secret", "written in the fleet file"},
		{"shared secret", fleet("", lanSite("s1", ""), lanSite("s2", "")),
			"defaults.secret", "one secret serves 2 sites (s1, s2)"},
		{"probe inside the agent pattern", fleet("", lanSite("s1", `probe_number: "10999"`)),
			"sites[s1].probe_number", "kept for the probe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := Parse([]byte(tt.yaml), t.TempDir(), testOptions())
			require.NoError(t, err)
			require.Len(t, spec.Warnings, 1, "warnings: %v", spec.Warnings)
			w := spec.Warnings[0]
			assert.Equal(t, tt.path, w.Path)
			assert.Contains(t, w.Msg, tt.contains)
			assert.NotZero(t, w.Line)
			assert.NotContains(t, w.Msg, testSecret)
			_, err = BuildPlan(spec, nil)
			require.NoError(t, err, "a warning does not stop the plan")
		})
	}
}

func TestDefaultsAndOverrides(t *testing.T) {
	yaml := fleet(`
scenario: cloud
pbx: {port: 5070, trunk_name: oml_trunk, user: pbx_user, codecs: [ulaw, alaw]}
oml: {profile: "2.x", trunk_name: pbx_trunk, codecs: [ulaw], qualify_frequency: 30}
agent_routing: per_agent
probe_number: "88888"`,
		`{id: c1, pbx: {address: 10.0.0.1}, oml: {address: oml.example.com}}`,
		`{id: d1, scenario: docker, pbx: {address: 10.0.0.5, trunk_name: other}, oml: {profile: "1.x", codecs: [alaw]}, agent_routing: pattern}`,
		`{id: l1, scenario: lan, pbx: {address: 10.0.0.7}, oml: {address: 10.0.0.8, deployment: podman, container: oml-asterisk-server}}`,
	)
	spec, err := Parse([]byte(yaml), t.TempDir(), testOptions())
	require.NoError(t, err)
	require.Len(t, spec.Sites, 3)

	c1 := spec.Sites[0].Trunk
	assert.Equal(t, "cloud", string(c1.Scenario))
	assert.Equal(t, 5070, c1.PBXPort)
	assert.Equal(t, "oml_trunk", c1.PBXTrunkName)
	assert.Equal(t, "oml_trunk", c1.OMLUser, "OML user defaults to the PBX trunk name")
	assert.Equal(t, "pbx_user", c1.PBXUser)
	assert.Equal(t, "pbx_trunk", c1.OMLTrunkName)
	assert.Equal(t, []string{"ulaw", "alaw"}, c1.PBXCodecs)
	assert.Equal(t, []string{"ulaw"}, c1.OMLCodecs)
	assert.Equal(t, 30, c1.QualifyFrequency)
	assert.Equal(t, "trunk-transport", c1.OMLTransport, "profile 2.x")
	assert.Equal(t, 5060, c1.OMLPort)
	assert.Equal(t, "per_agent", string(c1.AgentRouting))
	assert.Equal(t, "88888", c1.ProbeNumber)
	assert.Equal(t, testSecret, c1.Secret)
	assert.Equal(t, "host", spec.Sites[0].Deployment)

	d1 := spec.Sites[1].Trunk
	assert.Equal(t, "10.0.0.5", d1.OMLAddress, "docker: OML runs on the PBX host")
	assert.Equal(t, "other", d1.OMLUser)
	assert.Equal(t, "trunk-nat-docker-transport", d1.OMLTransport)
	assert.Equal(t, 5163, d1.OMLPort)
	assert.Equal(t, "pattern", string(d1.AgentRouting))
	assert.Equal(t, DefaultAgentPattern, d1.AgentPattern)
	assert.Equal(t, "docker", spec.Sites[1].Deployment, "docker scenario defaults to a docker deployment")
	assert.Equal(t, DefaultContainer, spec.Sites[1].Container)

	l1 := spec.Sites[2]
	assert.Equal(t, "podman", l1.Deployment)
	assert.Equal(t, "oml-asterisk-server", l1.Container)
	assert.Equal(t, "2.x", l1.Profile)
}

func TestBuiltinDefaults(t *testing.T) {
	yaml := "version: 1\nsites:\n  - {id: s1, pbx: {address: 10.0.0.1}, oml: {address: 10.0.0.2}, secret: env:PBXFLEET_SECRET}\n"
	spec, err := Parse([]byte(yaml), t.TempDir(), testOptions())
	require.NoError(t, err)
	tr := spec.Sites[0].Trunk
	assert.Equal(t, "lan", string(tr.Scenario))
	assert.Equal(t, 5060, tr.PBXPort)
	assert.Equal(t, "omnileads", tr.PBXTrunkName)
	assert.Equal(t, "omnileads", tr.OMLUser)
	assert.Equal(t, "issabel", tr.PBXUser)
	assert.Equal(t, "issabel", tr.OMLTrunkName)
	assert.Equal(t, []string{"alaw"}, tr.PBXCodecs)
	assert.Equal(t, []string{"alaw", "ulaw"}, tr.OMLCodecs)
	assert.Equal(t, 60, tr.QualifyFrequency)
	assert.Equal(t, "trunk-transport", tr.OMLTransport)
	assert.Equal(t, 5161, tr.OMLPort)
	assert.Equal(t, "pattern", string(tr.AgentRouting))
	assert.Equal(t, "_1XXX.", tr.AgentPattern)
	assert.Equal(t, "99999", tr.ProbeNumber)
	assert.Equal(t, "host", spec.Sites[0].Deployment)
	assert.Equal(t, "1.x", spec.Sites[0].Profile)
	assert.Empty(t, spec.Warnings)
}

func TestValidationErrorFormat(t *testing.T) {
	err := &ValidationError{Problems: []Problem{{Path: "a.b", Msg: "bad"}, {Msg: "whole file"}}}
	assert.Equal(t, "invalid fleet spec: 2 problems: a.b: bad; whole file", err.Error())
	assert.True(t, errors.Is(err, ErrInvalidSpec))
	assert.False(t, errors.Is(err, ErrUnknownSite))
}
