package planner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeUnknownKeys(t *testing.T) {
	yaml := `version: 1
defaults:
  secret: env:PBXFLEET_SECRET
  pbx:
    prot: 5061
sites:
  - id: bsas-1
    pbx: {address: 10.0.0.1}
    oml: {adress: 10.0.0.2}
    didz: []
  - id: bsas-2
    agents:
      - {id: 1, sip_number: 1006, nmae: X}
colour: blue
`
	spec, err := Parse([]byte(yaml), t.TempDir(), testOptions())
	require.Nil(t, spec)
	require.ErrorIs(t, err, ErrInvalidSpec)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)

	type got struct {
		Path string
		Line int
	}
	var all []got
	for _, p := range ve.Problems {
		all = append(all, got{p.Path, p.Line})
	}
	// Every unknown key at once, each with its path and line, in file order.
	assert.Equal(t, []got{
		{"defaults.pbx.prot", 5},
		{"sites[bsas-1].oml.adress", 9},
		{"sites[bsas-1].didz", 10},
		{"sites[bsas-2].agents[0].nmae", 13},
		{"colour", 14},
	}, all)
	assert.Contains(t, ve.Problems[0].Msg, `unknown key "prot"; did you mean "port"?`)
	assert.Contains(t, ve.Problems[0].Msg, "keys in defaults.pbx: address, port, trunk_name, user, codecs")
	assert.Contains(t, ve.Problems[1].Msg, `did you mean "address"?`)
	assert.Contains(t, ve.Problems[2].Msg, `did you mean "dids"?`)
	assert.Contains(t, ve.Problems[3].Msg, `did you mean "name"?`)
	assert.NotContains(t, ve.Problems[4].Msg, "did you mean", "nothing is close to colour")
	assert.Contains(t, ve.Problems[4].Msg, "keys at the top level: version, defaults, sites")
}

func TestDecodeStrictTypes(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		path     string
		line     int
		contains string
	}{
		{"port as text", "version: 1\ndefaults:\n  pbx: {port: fivethousand}\nsites: []\n",
			"defaults.pbx.port", 3, "must be a whole number, not text `fivethousand`"},
		{"codecs not a list", "version: 1\ndefaults:\n  oml:\n    codecs: alaw\nsites: []\n",
			"defaults.oml.codecs", 4, "must be a list"},
		{"did with leading zero unquoted", "version: 1\nsites:\n  - id: s1\n    dids:\n      - number: 098098\n",
			"sites[s1].dids[0].number", 5, `write it in quotes, "098098"`},
		{"octal-looking number", "version: 1\nsites:\n  - id: s1\n    dids: [{number: 0777}]\n",
			"sites[s1].dids[0].number", 4, "unquoted `0777`"},
		{"exponent number", "version: 1\ndefaults:\n  probe_number: 1e5\nsites: []\n",
			"defaults.probe_number", 3, "is a float to YAML"},
		{"number as a list", "version: 1\nsites:\n  - id: s1\n    agents: [{id: [1], sip_number: 1006}]\n",
			"sites[s1].agents[0].id", 4, "not a list or mapping"},
		{"site not a mapping", "version: 1\nsites:\n  - bsas-1\n",
			"sites[#0]", 3, "must be a mapping"},
		{"duplicate key", "version: 1\nsites:\n  - id: s1\n    id: s2\n",
			"", 4, `mapping key "id" already defined`},
		{"syntax", "version: 1\nsites: [\n",
			"", -1, "not valid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := Parse([]byte(tt.yaml), t.TempDir(), testOptions())
			require.Nil(t, spec)
			require.ErrorIs(t, err, ErrInvalidSpec)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.NotEmpty(t, ve.Problems)
			p := ve.Problems[0]
			if tt.path != "" {
				assert.Equal(t, tt.path, p.Path)
			}
			if tt.line < 0 {
				assert.Positive(t, p.Line)
			} else {
				assert.Equal(t, tt.line, p.Line)
			}
			assert.Contains(t, p.Msg, tt.contains)
		})
	}
}

func TestNumbersThatKeepTheirDigits(t *testing.T) {
	yaml := fleet("probe_number: 99999", lanSite("s1",
		`dids: [{number: "098098", extension: 5000}, {number: '0800'}, {number: 0}], agents: [{id: 10, sip_number: 1006}]`))
	spec, err := Parse([]byte(yaml), t.TempDir(), testOptions())
	require.NoError(t, err)
	tr := spec.Sites[0].Trunk
	assert.Equal(t, "098098", tr.DIDs[0].Number)
	assert.Equal(t, "5000", tr.DIDs[0].Extension)
	assert.Equal(t, "0800", tr.DIDs[1].Number)
	assert.Equal(t, "0", tr.DIDs[2].Number)
	assert.Equal(t, "10", tr.Agents[0].ID)
	assert.Equal(t, "100610", tr.Agents[0].DialNumber())
	assert.Equal(t, "99999", tr.ProbeNumber)
}

func TestParseFileShape(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		contains string
	}{
		{"empty", "", "empty"},
		{"comments only", "# nothing here\n", "empty"},
		{"two documents", fleet("", lanSite("s1", "")) + "---\nversion: 1\n", "one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), t.TempDir(), testOptions())
			require.ErrorIs(t, err, ErrInvalidSpec)
			assert.Contains(t, err.Error(), tt.contains)
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "s.secret"), []byte("Load-Test.Secret+99\n"), 0o600))
	file := filepath.Join(dir, "fleet.yaml")
	require.NoError(t, os.WriteFile(file, []byte(fleet("", lanSite("s1", "secret: file:s.secret"))), 0o600))

	spec, err := Load(file, testOptions())
	require.NoError(t, err)
	assert.Equal(t, "Load-Test.Secret+99", spec.Sites[0].Trunk.Secret, "file: is relative to the fleet file")

	_, err = Load(filepath.Join(dir, "missing.yaml"), testOptions())
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.NotErrorIs(t, err, ErrInvalidSpec)
}

func TestExampleFleetPlansCleanly(t *testing.T) {
	spec, err := Load(filepath.Join("..", "..", "examples", "fleet.yaml"), Options{})
	require.NoError(t, err)
	assert.Empty(t, spec.Warnings)
	require.Len(t, spec.Sites, 3)

	byScenario := map[string]Site{}
	for _, s := range spec.Sites {
		byScenario[string(s.Trunk.Scenario)] = s
		assert.Equal(t, "file:secrets/"+s.ID+".secret", s.SecretSource)
		assert.GreaterOrEqual(t, len(s.Trunk.Secret), 24, "example secrets are long")
		assert.Equal(t, "098098", s.Trunk.DIDs[0].Number)
		assert.Equal(t, "5000", s.Trunk.DIDs[0].Extension)
		assert.Equal(t, "10061", s.Trunk.Agents[0].DialNumber())
		assert.Equal(t, "Adrian Belew", s.Trunk.Agents[0].Name)
		assert.Equal(t, "10072", s.Trunk.Agents[1].DialNumber())
		assert.Equal(t, "Mikael Ackerfeldt", s.Trunk.Agents[1].Name)
	}
	assert.Len(t, byScenario, 3, "one site per scenario")
	assert.Equal(t, 5161, byScenario["lan"].Trunk.OMLPort)
	assert.Equal(t, 5162, byScenario["cloud"].Trunk.OMLPort)
	assert.Equal(t, 5163, byScenario["docker"].Trunk.OMLPort)
	assert.Equal(t, byScenario["docker"].Trunk.PBXAddress, byScenario["docker"].Trunk.PeerHost())

	plan, err := BuildPlan(spec, nil)
	require.NoError(t, err)
	for _, sp := range plan.Sites {
		for _, r := range sp.Relations {
			assert.True(t, r.Holds, "%s: %s", sp.Site.ID, r.Name)
		}
	}
	// The example secret files are not the seed's and not each other's.
	secrets := map[string]bool{}
	for _, s := range spec.Sites {
		assert.False(t, secrets[s.Trunk.Secret])
		secrets[s.Trunk.Secret] = true
		assert.NotContains(t, strings.ToLower(s.Trunk.Secret), "omnileads")
	}
}

func TestSelect(t *testing.T) {
	yaml := fleet("", lanSite("s1", `dids: [{number: "10099"}]`), lanSite("s2", "secret: env:OTHER_SECRET"), lanSite("s3", "secret: Lit3ral.Secret-Value"))
	spec, err := Parse([]byte(yaml), t.TempDir(), testOptions())
	require.NoError(t, err)
	require.Len(t, spec.Warnings, 2, "%v", spec.Warnings) // s1's DID, s3's literal secret

	sel, err := spec.Select("s3", "s1")
	require.NoError(t, err)
	require.Len(t, sel.Sites, 2)
	assert.Equal(t, "s1", sel.Sites[0].ID, "file order, not argument order")
	assert.Equal(t, "s3", sel.Sites[1].ID)

	only2, err := spec.Select("s2")
	require.NoError(t, err)
	for _, w := range only2.Warnings {
		assert.NotContains(t, w.Path, "sites[s1]")
		assert.NotContains(t, w.Path, "sites[s3]")
	}

	_, err = spec.Select("s1", "nope", "gone")
	require.ErrorIs(t, err, ErrUnknownSite)
	assert.Contains(t, err.Error(), `["nope" "gone"]`)

	all, err := spec.Select()
	require.NoError(t, err)
	assert.Len(t, all.Sites, 3)
}

// TestMergedKeysCheckedWhereTheyLand: a YAML merge (<<) brings its keys into
// the mapping it is written in, so they are checked against that section, not
// where the anchor was defined (the file is parsed once, and this walk stands
// in for the decoder's known-fields check).
func TestMergedKeysCheckedWhereTheyLand(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string // problem paths; nil: the file plans
	}{
		{"a PBX setting merged into oml", fleet("pbx: &p {port: 5070, trunk_name: omnileads}", lanSite("s1", `oml: {<<: *p, address: 10.0.0.2}`)), []string{"sites[s1].oml.port"}},
		{"the same through a list of merges", fleet("pbx: &p {port: 5070}", lanSite("s1", `oml: {<<: [*p], address: 10.0.0.2}`)), []string{"sites[s1].oml.port"}},
		{"oml settings merged into oml", fleet("oml: &o {trunk_name: omnileads}", lanSite("s1", `oml: {<<: [*o], address: 10.0.0.2}`)), nil},
		{"a site merged into its own oml", "version: 1\ndefaults: {secret: env:PBXFLEET_SECRET}\nsites:\n  - &x {id: a, oml: {<<: *x}}\n", []string{"sites[a].oml.id", "sites[a].oml.oml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := planYAML(tt.data, t.TempDir(), testOptions())
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			assert.ElementsMatch(t, tt.want, problemPaths(t, err))
		})
	}
}
