package planner

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostileFleetFiles: what an attacker (or an accident) puts in a fleet
// file is refused with a line, a path when there is one, one line per problem
// (a newline in a value cannot forge a "FILE:LINE:" line), values echoed at
// most 64 bytes, and nothing that may be the secret repeated.
func TestHostileFleetFiles(t *testing.T) {
	const secret = "Sup3r-S3cret-Value"
	huge := strings.Repeat("a", 5<<20)
	tests := []struct {
		name     string
		yaml     string
		line     int
		path     string
		contains string
	}{
		{"a float port", fleet("", lanSite("s1", "pbx: {address: 10.0.0.1, port: 5080.9}")), 5, "sites[s1].pbx.port", `must be a whole number, not "5080.9"`},
		{"a float port in defaults", fleet("pbx: {port: 5060.0}", lanSite("s1", "")), 4, "defaults.pbx.port", "whole number"},
		{"a float qualify frequency", fleet("", lanSite("s1", "oml: {address: 10.0.0.2, qualify_frequency: 1e2}")), 5, "sites[s1].oml.qualify_frequency", "whole number"},
		{"a float version", "version: 1.5\nsites: []\n", 1, "version", "whole number"},
		{"a NUL byte", fleet("", lanSite("s1", "")) + "  - id: a\x00b\n", 6, "", "column 10: a NUL byte"},
		{"invalid UTF-8", fleet("", lanSite("s1", "")) + "  - id: a\xffb\n", 6, "", "byte 0xff is not UTF-8"},
		{"a control character", "version: 1\n\x1bsites: []\n", 2, "", "control character 0x1b"},
		{"a newline in a name", fleet("", lanSite("s1", `agents: [{id: 1, sip_number: 1006, name: "A\nfleet.yaml:1: forged"}]`)), 5, "sites[s1].agents[0].name", `"A\nfleet.yaml:1: forged"`},
		{"a newline in a site id", fleet("", `{id: "s1\nfleet.yaml:9: forged", pbx: {address: 10.0.0.1}, oml: {address: 10.0.0.2}}`), 5, "sites[#0].id", `\n`},
		{"a newline in a key", fleet("", lanSite("s1", `"x\nfleet.yaml:9: forged": 1`)), 5, "sites[s1]", "unknown key, not shown"},
		{"a 5 MB site id", fleet("", `{id: `+huge+`, pbx: {address: 10.0.0.1}, oml: {address: 10.0.0.2}}`), 5, "sites[#0].id", "aaa…"},
		{"env: followed by the secret", fleet("", lanSite("s1", "secret: 'env:"+secret+"!'")), 5, "sites[s1].secret", "not an environment variable name"},
		{"the secret as a key under secret", fleet("", lanSite("s1", "secret: {"+secret+": 1}")), 5, "sites[s1].secret", "cannot unmarshal"},
		{"the secret as a key of the site", fleet("", lanSite("s1", secret+": 1")), 5, "sites[s1]", "unknown key, not shown"},
		{"the secret tagged !!int", fleet("", lanSite("s1", "secret: !!int "+secret)), 5, "sites[s1].secret", "(value not shown)"},
		{"the secret in a list", fleet("", lanSite("s1", "secret: ["+secret+"]")), 5, "sites[s1].secret", "cannot unmarshal !!seq into string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), t.TempDir(), testOptions())
			require.Error(t, err)
			var ve *ValidationError
			require.ErrorAs(t, err, &ve)
			require.NotEmpty(t, ve.Problems)
			p := ve.Problems[0]
			assert.Equal(t, tt.line, p.Line, "%s", p)
			assert.Equal(t, tt.path, p.Path, "%s", p)
			assert.Contains(t, p.String(), tt.contains)
			for _, q := range ve.Problems {
				assert.NotContains(t, q.String(), "\n", "one line per problem")
				assert.Less(t, len(q.String()), 600, "values are echoed capped")
			}
			assert.NotContains(t, err.Error(), secret)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}
