package labfleet

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"

	"github.com/pbxfleet/pbxfleet/internal/asterisk"
)

// Sites returns n lab sites cycling through the three scenarios, named
// <prefix>-<i>, on the addresses of Addresses(first), Addresses(first+1), ...
// (callers running several fleets at once give each its own range).
func Sites(prefix string, first, n int) []Site {
	sites := make([]Site, n)
	for i := range sites {
		sc := asterisk.Scenarios[i%len(asterisk.Scenarios)]
		pbx, oml := Addresses(first + i)
		if sc == asterisk.ScenarioDocker {
			oml = pbx // OMniLeads in Docker on the PBX host
		}
		sites[i] = Site{ID: fmt.Sprintf("%s-%d", prefix, i+1), Scenario: sc, PBXAddress: pbx, OMLAddress: oml, Profile: "1.x"}
	}
	return sites
}

// FleetYAML returns a fleet file for sites with the seed's example values (DID
// 098098 on extension 5000, agents 1/1006 and 2/1007) and each site's secret from
// secrets (literal values: the file is built in memory and never printed).
func FleetYAML(sites []Site, secrets map[string]string) []byte {
	var b strings.Builder
	b.WriteString("version: 1\ndefaults:\n  agent_routing: pattern\n  agent_pattern: \"_1XXX.\"\n  probe_number: \"99999\"\nsites:\n")
	for _, s := range sites {
		fmt.Fprintf(&b, "  - id: %s\n    scenario: %s\n    pbx: {address: %s}\n", s.ID, s.Scenario, s.PBXAddress)
		if s.Scenario == asterisk.ScenarioDocker {
			b.WriteString("    oml: {deployment: docker, profile: \"" + s.Profile + "\"}\n")
		} else {
			fmt.Fprintf(&b, "    oml: {address: %s, profile: \"%s\"}\n", s.OMLAddress, s.Profile)
		}
		fmt.Fprintf(&b, "    secret: %q\n", secrets[s.ID])
		b.WriteString("    dids: [{number: \"098098\", extension: \"5000\"}]\n")
		b.WriteString("    agents: [{id: 1, sip_number: 1006, name: Adrian Belew}, {id: 2, sip_number: 1007, name: Mikael Ackerfeldt}]\n")
	}
	return []byte(b.String())
}

const secretAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

// NewSecret returns a random 24-character trunk secret.
func NewSecret() string {
	var b strings.Builder
	for range 24 {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(secretAlphabet))))
		if err != nil {
			panic(err) // crypto/rand never fails on Linux
		}
		b.WriteByte(secretAlphabet[n.Int64()])
	}
	return b.String()
}
