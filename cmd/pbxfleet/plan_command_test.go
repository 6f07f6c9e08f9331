package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/cmd/internal/clitest"
	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/services/planner"
)

// result is what one in-process run of the CLI produced.
type result = clitest.Result

// run executes the root command in-process with args and stdin.
func run(_ *testing.T, stdin string, args ...string) result {
	return clitest.Run(newRootCommand(), stdin, args...)
}

const examplePath = "../../examples/fleet.yaml"

// exampleSecrets returns the example secret values, which must never be printed.
func exampleSecrets(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../examples/secrets/*.secret")
	require.NoError(t, err)
	require.Len(t, files, 3)
	var secrets []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		secrets = append(secrets, strings.TrimSpace(string(data)))
	}
	return secrets
}

func TestPlanExampleText(t *testing.T) {
	r := run(t, "", "plan", examplePath)
	require.NoError(t, r.Err, r.Stderr)
	assert.Empty(t, r.Stderr)
	for _, want := range []string{
		"3 sites, 6 nodes: 6 new, 0 changed, 0 unchanged",
		"== site bsas-1 (lan) ==",
		"== site cordoba-cloud (cloud) ==",
		"== site rosario-docker (docker) ==",
		"secret from file:secrets/bsas-1.secret",
		"OMniLeads (pjsip wizard)",
		"node bsas-1.pbx: new, revision 1",
		"sip_custom.conf gets the line: #include pbxfleet_sip.conf",
		"| secret=********",
		"| inbound_auth/password=********",
		"| exten => 5000,1,Dial(SIP/omnileads/098098)",
		"| exten => 2001,1,Dial(SIP/omnileads/10061)", // per_agent routing at cordoba-cloud
		"transport=trunk-nat-docker-transport (10.3.0.2:5163, profile 1.x)",
	} {
		assert.Contains(t, r.Stdout, want)
	}
	assert.Equal(t, 24, strings.Count(r.Stdout, " yes "), "8 relations hold at each of 3 sites")
	assert.NotContains(t, r.Stdout, "NO:")
	for _, s := range exampleSecrets(t) {
		assert.NotContains(t, r.All(), s)
	}
}

func TestPlanExampleJSON(t *testing.T) {
	r := run(t, "", "plan", examplePath, "--output", "json", "--site", "cordoba-cloud")
	require.NoError(t, r.Err, r.Stderr)
	var rep planner.Report
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&rep))
	require.Len(t, rep.Sites, 1)
	s := rep.Sites[0]
	assert.Equal(t, "cordoba-cloud", s.Site)
	assert.Equal(t, "cloud", s.Scenario)
	assert.Len(t, s.Relations, 8)
	require.Len(t, s.Nodes, 2)
	assert.Equal(t, "cordoba-cloud.pbx", s.Nodes[0].Node)
	assert.Equal(t, "********", s.Nodes[0].Intent.Secret)
	assert.Equal(t, uint64(1), s.Nodes[1].Revision)
	assert.Len(t, rep.PlanHash, 64)
	assert.Equal(t, planner.Summary{Sites: 1, Nodes: 2, New: 2}, rep.Summary)
	assert.Contains(t, r.Stdout, `exten => 2001,1,Dial(SIP/omnileads/10061)`, "no HTML escaping of =>")
	for _, sec := range exampleSecrets(t) {
		assert.NotContains(t, r.All(), sec)
	}

	// The same input gives the same document.
	again := run(t, "", "plan", examplePath, "--output", "json", "--site", "cordoba-cloud")
	assert.Equal(t, r.Stdout, again.Stdout)
}

func TestPlanShowsChangesAgainstCurrent(t *testing.T) {
	spec, err := planner.Load(examplePath, planner.Options{})
	require.NoError(t, err)
	first, err := planner.BuildPlan(spec, nil)
	require.NoError(t, err)
	current := map[string]events.Desired{}
	for _, sp := range first.Sites {
		for _, np := range sp.Nodes {
			d := np.Desired
			d.Revision = 7
			current[d.Node] = d
		}
	}
	d := current["bsas-1.oml"]
	d.Trunk.Secret = "An-Old-Secret-Value-123"
	d.Trunk.PBXPort = 5070
	current["bsas-1.oml"] = d

	c := &planCommand{output: outputText, current: func(context.Context) (map[string]events.Desired, error) { return current, nil }}
	var out, errOut bytes.Buffer
	require.NoError(t, c.run(context.Background(), examplePath, &out, &errOut))
	text := out.String()
	assert.Contains(t, text, "5 unchanged")
	assert.Contains(t, text, "node bsas-1.oml: changed, revision 7 -> 8")
	assert.Contains(t, text, "~ pbx_port: 5070 -> 5060")
	assert.Contains(t, text, "~ secret changed")
	assert.Contains(t, text, "node bsas-1.pbx: unchanged at revision 7")
	assert.NotContains(t, text, "An-Old-Secret-Value-123")
	for _, s := range exampleSecrets(t) {
		assert.NotContains(t, text, s)
	}

	c.current = func(context.Context) (map[string]events.Desired, error) { return nil, errors.New("nats: no servers") }
	err = c.run(context.Background(), examplePath, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read the current state: nats: no servers")
}

func TestPlanRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	const secret = "Never-Print-This-Secret-42"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "s.secret"), []byte(secret+"\n"), 0o600))
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	bad := write("bad.yaml", `version: 1
defaults:
  secret: file:s.secret
  pbx: {prot: 5060}
sites:
  - id: bsas-1
    pbx: {address: 10.0.0.1}
    oml: {address: 10.0.0.2}
    dids: [{number: "1"}, {number: "2"}, {number: "3;x"}]
`)
	invalid := write("invalid.yaml", `version: 1
defaults:
  secret: file:s.secret
sites:
  - id: bsas-1
    pbx: {address: 10.0.0.1}
    oml: {address: 10.0.0.2, trunk_name: issabel-oml}
    dids: [{number: "1"}, {number: "2"}, {number: "3;x"}]
  - id: Bad_Site
    pbx: {address: 10.0.0.3}
`)
	weak := write("weak.yaml", "version: 1\nsites:\n  - {id: lab, pbx: {address: 10.0.0.1}, oml: {address: 10.0.0.2}, secret: Sh0rt-9}\n")
	good := write("good.yaml", "version: 1\nsites:\n  - {id: lab, pbx: {address: 10.0.0.1}, oml: {address: 10.0.0.2}, secret: file:s.secret}\n")

	tests := []struct {
		name       string
		args       []string
		stderr     []string // lines expected on stderr
		errContain string
	}{
		{"unknown key", []string{"plan", bad}, []string{
			bad + `:4: defaults.pbx.prot: unknown key "prot"; did you mean "port"?`,
		}, "1 problem, nothing planned"},
		{"every problem, one per line", []string{"plan", invalid}, []string{
			invalid + ":7: sites[bsas-1].oml.trunk_name: unsafe value",
			invalid + ":8: sites[bsas-1].dids[2].number: unsafe value",
			invalid + ":9: sites[#1].id: invalid site",
			invalid + ":9: sites[#1].oml.address: required in scenario lan",
		}, "4 problems, nothing planned"},
		{"weak secret", []string{"plan", weak}, []string{weak + ":3: sites[lab].secret: weak secret: shorter than 12 characters"}, "1 problem"},
		{"missing file", []string{"plan", filepath.Join(dir, "nope.yaml")}, nil, "no such file"},
		{"unknown site", []string{"plan", good, "--site", "elsewhere"}, nil, `unknown site: ["elsewhere"]`},
		{"unknown output", []string{"plan", good, "-o", "yaml"}, nil, `--output "yaml": want text or json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, "", tt.args...)
			assert.Equal(t, 2, r.Code(), "exit status 2 for invalid input; err=%v", r.Err)
			assert.Empty(t, r.Stdout, "nothing is rendered")
			for _, line := range tt.stderr {
				assert.Contains(t, r.Stderr, line)
			}
			assert.Equal(t, len(tt.stderr), strings.Count(r.Stderr, "\n"), "one line per problem:\n%s", r.Stderr)
			assert.Contains(t, r.Err.Error(), tt.errContain)
			assert.NotContains(t, r.All(), secret)
			assert.NotContains(t, r.All(), "Sh0rt-9")
		})
	}

	t.Run("accept weak secrets", func(t *testing.T) {
		r := run(t, "", "plan", weak, "--accept-weak-secrets")
		require.NoError(t, r.Err)
		assert.Contains(t, r.Stdout, "sites[lab].secret: weak secret accepted for a lab")
		assert.Contains(t, r.Stdout, "secret=********")
		assert.NotContains(t, r.All(), "Sh0rt-9")
	})

	t.Run("good file", func(t *testing.T) {
		r := run(t, "", "plan", good, "-o", "json")
		require.NoError(t, r.Err)
		assert.NotContains(t, r.All(), secret)
	})
}

func TestPlanHelpTeaches(t *testing.T) {
	r := run(t, "", "plan", "--help")
	require.NoError(t, r.Err)
	for _, want := range []string{"FILE:LINE: PATH: MESSAGE", "env:NAME", "--accept-weak-secrets", "pbxfleet plan examples/fleet.yaml --output json", "--site"} {
		assert.Contains(t, r.Stdout, want)
	}
}
