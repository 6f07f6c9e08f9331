package planner

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fleetOf generates a fleet file of n sites, cycling through the three
// scenarios, each with two DIDs and three agents, all sharing env:PBXFLEET_SECRET.
func fleetOf(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\ndefaults:\n  secret: env:PBXFLEET_SECRET\n  oml: {codecs: [alaw, ulaw]}\nsites:\n")
	scenarios := []string{"lan", "cloud", "docker"}
	for i := range n {
		sc := scenarios[i%3]
		fmt.Fprintf(&b, "  - id: site-%05d\n    scenario: %s\n    pbx: {address: 10.%d.%d.2}\n", i, sc, i/256%256, i%256)
		if sc != "docker" {
			fmt.Fprintf(&b, "    oml: {address: oml-%05d.example.com}\n", i)
		}
		b.WriteString(`    dids: [{number: "098098", extension: "5000"}, {number: "4400"}]` + "\n")
		b.WriteString("    agents: [{id: 1, sip_number: 1006, name: Adrian Belew}, {id: 2, sip_number: 1007}, {id: 3, sip_number: 1008}]\n")
	}
	return []byte(b.String())
}

// BenchmarkPlan10000Sites measures the whole of `pbxfleet plan` for a large
// fleet: strict decode, validation, secret resolution, rendering of 20,000
// nodes, relation checks and the hash.
func BenchmarkPlan10000Sites(b *testing.B) {
	const sites = 10000
	data := fleetOf(sites)
	opts := testOptions()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		spec, err := Parse(data, b.TempDir(), opts)
		if err != nil {
			b.Fatal(err)
		}
		plan, err := BuildPlan(spec, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(plan.Sites) != sites {
			b.Fatalf("planned %d sites, want %d", len(plan.Sites), sites)
		}
	}
	b.ReportMetric(float64(sites)*float64(b.N)/b.Elapsed().Seconds(), "sites/s")
}

func TestGeneratedFleetIsValid(t *testing.T) {
	spec, err := Parse(fleetOf(30), t.TempDir(), testOptions())
	require.NoError(t, err)
	require.Len(t, spec.Sites, 30)
	// Only the shared-secret warning: the benchmark plans a realistic, clean fleet.
	require.Len(t, spec.Warnings, 1)
	assert.Contains(t, spec.Warnings[0].Msg, "serves 30 sites")
}
