package planner

import (
	"fmt"
	"hash/fnv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testSecret is what env:PBXFLEET_SECRET resolves to in tests; tests check that it
// never shows up in an error, a warning or a report.
const testSecret = "Zq8-Lw3.Vn7+Tk2=Rp5"

// testEnv is the environment the tests resolve env: secrets from.
func testEnv(name string) (string, bool) {
	switch name {
	case "PBXFLEET_SECRET":
		return testSecret, true
	case "OTHER_SECRET":
		return "Other.Secret-4471-xyz", true
	case "WEAK_SECRET":
		return "omnileads", true
	case "EMPTY_SECRET":
		return "", true
	}
	return "", false
}

func testOptions() Options { return Options{LookupEnv: testEnv} }

// fleet assembles a fleet file: the defaults block (indented under defaults:,
// one setting per line) and the sites, one flow mapping per line.
func fleet(defaults string, sites ...string) string {
	var b strings.Builder
	b.WriteString("version: 1\ndefaults:\n  secret: env:PBXFLEET_SECRET\n")
	for _, line := range strings.Split(strings.TrimSpace(defaults), "\n") {
		if line != "" {
			b.WriteString("  " + strings.TrimSpace(line) + "\n")
		}
	}
	b.WriteString("sites:\n")
	for _, s := range sites {
		b.WriteString("  - " + s + "\n")
	}
	return b.String()
}

// lanSite is a valid lan site with the seed's DID and agents, as one flow
// mapping; extra is "key: value, key: value" at the site level, and replaces the
// site's own entry for the same key.
func lanSite(id, extra string) string {
	// Each site its own hosts (two sites cannot share one); s1 on 10.0.0.1 and 2.
	net := 0
	if id != "s1" {
		h := fnv.New32a()
		h.Write([]byte(id))
		net = 1 + int(h.Sum32()%250)
	}
	parts := [][2]string{
		{"id", id},
		{"pbx", fmt.Sprintf("{address: 10.0.%d.1}", net)},
		{"oml", fmt.Sprintf("{address: 10.0.%d.2}", net)},
		{"dids", `[{number: "098098", extension: "5000"}]`},
		{"agents", "[{id: 1, sip_number: 1006, name: Adrian Belew}, {id: 2, sip_number: 1007, name: Mikael Ackerfeldt}]"},
	}
	for _, e := range splitFlow(extra) {
		key, value, _ := strings.Cut(e, ":")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		replaced := false
		for i := range parts {
			if parts[i][0] == key {
				parts[i][1], replaced = value, true
			}
		}
		if !replaced {
			parts = append(parts, [2]string{key, value})
		}
	}
	entries := make([]string, len(parts))
	for i, p := range parts {
		entries[i] = p[0] + ": " + p[1]
	}
	return "{" + strings.Join(entries, ", ") + "}"
}

// splitFlow splits "a: 1, b: {c: 2, d: 3}" at its top-level commas.
func splitFlow(s string) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if strings.TrimSpace(s[start:]) != "" {
		out = append(out, s[start:])
	}
	return out
}

// problemPaths returns the paths of a *ValidationError's problems.
func problemPaths(t *testing.T, err error) []string {
	t.Helper()
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	paths := make([]string, len(ve.Problems))
	for i, p := range ve.Problems {
		paths[i] = p.Path
	}
	return paths
}

// planYAML runs the whole pipeline, as `pbxfleet plan` does.
func planYAML(data, baseDir string, opts Options) (*Plan, error) {
	spec, err := Parse([]byte(data), baseDir, opts)
	if err != nil {
		return nil, err
	}
	return BuildPlan(spec, nil)
}
