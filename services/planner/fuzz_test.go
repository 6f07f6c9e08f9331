package planner

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseSpec feeds arbitrary bytes to Parse: it must never panic, and it must
// return exactly one of a spec and a *ValidationError.
func FuzzParseSpec(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "fleet.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(fleet("", lanSite("s1", ""))))
	f.Add([]byte(fleet("agent_routing: per_agent", lanSite("s1", `agents: [{id: 1, sip_number: 1006, extension: 5000}]`))))
	f.Add([]byte("version: 1\nsites:\n  - &a {id: x}\n  - *a\n  - <<: *a\n"))
	f.Add([]byte("version: 1\ndefaults: {pbx: {prot: 1}}\nsites: [{id: a, dids: [{number: 098}]}]\n"))
	f.Add([]byte("{"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := Parse(data, dir, testOptions())
		if (spec == nil) == (err == nil) {
			t.Fatalf("Parse returned spec %v and error %v", spec != nil, err)
		}
		if err != nil {
			if _, ok := err.(*ValidationError); !ok {
				t.Fatalf("error is %T, not *ValidationError: %v", err, err)
			}
			return
		}
		if _, err := BuildPlan(spec, nil); err != nil {
			t.Fatalf("a valid spec must plan: %v", err)
		}
	})
}
