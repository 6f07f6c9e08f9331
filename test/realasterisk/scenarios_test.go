package realasterisk

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// strongSecret returns a secret the planner accepts, different per n.
func strongSecret(n int) string {
	return "Real-Asterisk-Trunk-Secret-" + strings.Repeat(string(rune('a'+n%26)), 8)
}

// requireConverged checks that the rollout succeeded and both nodes proved
// the trunk with their probe call (those the rollout put a revision to).
func requireConverged(t *testing.T, rec orchestrator.Rollout, code int) {
	t.Helper()
	require.Equal(t, 0, code, "rollout exit code (%s: %s)", rec.Phase, rec.Message)
	require.Equal(t, orchestrator.PhaseSucceeded, rec.Phase, rec.Message)
	s := siteOf(t, rec)
	require.Equal(t, orchestrator.SiteConverged, s.Outcome, "%s: %s", s.Reason, s.Message)
	for _, n := range s.Nodes {
		if !n.Put {
			continue // up to date: this rollout did not touch it
		}
		res := nodeResult(t, s, n.Role)
		require.Equal(t, events.OutcomeConverged, res.Outcome, "%s: %s", n.Role, res.Reason)
		require.Equal(t, "trunk_works", res.Probe, "%s's probe verdict", n.Role)
	}
}

// TestScenariosConvergeOnRealAsterisk rolls a site out in each scenario and
// OMniLeads profile, rotates its secret, and checks what Asterisk itself says:
// the chan_sip peer is OK, the pjsip endpoint is available, and no WARNING or
// ERROR line in either log comes from a managed file.
func TestScenariosConvergeOnRealAsterisk(t *testing.T) {
	labScript(t)
	tests := []struct {
		name         string
		scenario     string
		profile      string
		pbxIP, omlIP string
		omlPort      string // the port OMniLeads' transport listens on
	}{
		{"lan 1.x", "lan", "1.x", "127.0.21.2", "127.0.21.3", "5161"},
		{"cloud 1.x", "cloud", "1.x", "127.0.22.2", "127.0.22.3", "5162"},
		{"docker 1.x", "docker", "1.x", "127.0.23.2", "127.0.23.2", "5163"},
		{"lan 2.x", "lan", "2.x", "127.0.24.2", "127.0.24.3", "5060"},
		{"cloud 2.x", "cloud", "2.x", "127.0.25.2", "127.0.25.3", "5060"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, fleetSite{Scenario: tt.scenario, Profile: tt.profile, PBXIP: tt.pbxIP, OMLIP: tt.omlIP,
				Secret: strongSecret(1)}, 15*time.Second)
			pbxLog, omlLog := r.lab.mark("pbx"), r.lab.mark("oml")

			rec, code, took := r.rollout()
			requireConverged(t, rec, code)
			t.Logf("checked: converged in %s, both probes trunk_works", took.Round(time.Millisecond))

			peer := r.lab.rx("pbx", "sip show peer omnileads")
			require.Regexp(t, `Addr->IP\s+: `+regexp.QuoteMeta(tt.omlIP+":"+tt.omlPort)+`\b`, peer,
				"the chan_sip peer dials OMniLeads' %s transport", tt.scenario)
			require.Regexp(t, `Status\s+: OK \(`, peer, "chan_sip's own qualify says OK")
			ep := r.lab.rx("oml", "pjsip show endpoint issabel")
			require.Contains(t, ep, "Avail", "the pjsip endpoint's contact is available")

			// Rotation: a new secret reaches both sides and still verifies.
			r.site.Secret = strongSecret(2)
			rec, code, took = r.rollout()
			requireConverged(t, rec, code)
			t.Logf("checked: secret rotation converged in %s", took.Round(time.Millisecond))
			require.Contains(t, readFile(t, r.lab.etc("pbx")+"/pbxfleet_sip.conf"), "secret="+strongSecret(2))

			for _, side := range []struct {
				name string
				mark logMark
			}{{"pbx", pbxLog}, {"oml", omlLog}} {
				lines := side.mark.since(t)
				require.Empty(t, managedFileProblems(lines), "%s's log: WARNING/ERROR lines caused by a managed file", side.name)
				t.Logf("checked: %s's log, %d lines since the first rollout, no WARNING/ERROR from a managed file", side.name, len(lines))
			}
		})
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
