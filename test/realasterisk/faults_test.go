package realasterisk

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/proctest"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// TestStatusFollowsReachability (D1, D2): after a converged rollout the far
// side (OMniLeads' Asterisk) stops; the PBX node's status turns unhealthy
// within one status interval plus chan_sip's qualify period and timeout, and
// healthy again when OMniLeads returns. pbxfleet never forces `sip qualify`:
// chan_sip keeps its own schedule throughout.
func TestStatusFollowsReachability(t *testing.T) {
	labScript(t)
	const statusInterval, qualifyFreq = 2 * time.Second, 5
	r := newRig(t, fleetSite{Scenario: "lan", PBXIP: "127.0.131.2", OMLIP: "127.0.131.3", Secret: strongSecret(3),
		QualifyFreq: qualifyFreq}, statusInterval)
	rec, code, _ := r.rollout()
	requireConverged(t, rec, code)
	require.Contains(t, r.lab.rx("pbx", "sip show peer omnileads"), fmt.Sprintf("Qualify Freq : %d ms", qualifyFreq*1000))

	healthy := func(want bool) func() (bool, string) {
		return func() (bool, string) {
			st, err := r.status("pbx")
			if err != nil {
				return false, err.Error()
			}
			return st.Healthy == want && st.Trunk.Reachable == want, fmt.Sprintf("healthy=%v trunk=%s detail=%q", st.Healthy, st.Trunk.State, st.Detail)
		}
	}
	proctest.Eventually(t, 30*time.Second, "pbx healthy after the rollout", healthy(true))

	// chan_sip declares a peer unreachable when a poke goes unanswered for
	// twice its qualify max (2 s by default); the next poke comes at most one
	// qualify period later; the agent reads it at its next status refresh
	// (interval ±20%).
	bound := time.Duration(qualifyFreq)*time.Second + 4*time.Second + statusInterval*12/10 + 2*time.Second
	r.lab.stop("oml")
	down := proctest.Eventually(t, 2*bound, "pbx unhealthy with OMniLeads stopped", healthy(false))
	t.Logf("checked: OMniLeads stopped, the PBX node unhealthy after %s (bound %s)", down.Round(100*time.Millisecond), bound)
	require.LessOrEqual(t, down, bound)
	st, err := r.status("pbx")
	require.NoError(t, err)
	require.NotEmpty(t, st.Detail, "status says why")
	t.Logf("status detail: %s", st.Detail)

	r.lab.start("oml")
	up := proctest.Eventually(t, 2*bound, "pbx healthy again with OMniLeads back", healthy(true))
	t.Logf("checked: OMniLeads back, the PBX node healthy after %s", up.Round(100*time.Millisecond))
	require.LessOrEqual(t, up, bound)
	peer := r.lab.rx("pbx", "sip show peer omnileads")
	require.Regexp(t, `Status\s+: OK \(`, peer)
	commands := readFile(t, r.commandLog("pbx"))
	require.Contains(t, commands, "sip reload", "the wrapper recorded pbx-node's commands")
	require.NotContains(t, commands, "sip qualify", "pbx-node never forces a qualify")
}

// fail2banMatches runs fail2ban-regex with Debian's stock asterisk filter on
// lines and returns how many it matched; it skips when fail2ban is missing.
func fail2banMatches(t *testing.T, lines []string) int {
	t.Helper()
	bin, err := exec.LookPath("fail2ban-regex")
	if err != nil {
		t.Skip("fail2ban-regex not found: install Debian's fail2ban (.ci/run does)")
	}
	const filter = "/etc/fail2ban/filter.d/asterisk.conf"
	if _, err := os.Stat(filter); err != nil {
		t.Skipf("fail2ban's asterisk filter: %v", err)
	}
	path := filepath.Join(t.TempDir(), "segment.log")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, path, filter).CombinedOutput()
	require.NoError(t, err, "fail2ban-regex: %s", out)
	m := regexp.MustCompile(`Lines: \d+ lines, \d+ ignored, (\d+) matched`).FindSubmatch(out)
	require.NotNil(t, m, "fail2ban-regex output: %s", out)
	n, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	return n
}

// TestWrongSecretIsGentleWithFail2ban (D4): OMniLeads is given another secret
// by hand; one verification from each side (pbx-node check, agents-node
// check) fails, and adds at most 4 lines that fail2ban's stock asterisk
// filter matches to the far side's log.
func TestWrongSecretIsGentleWithFail2ban(t *testing.T) {
	labScript(t)
	r := newRig(t, fleetSite{Scenario: "lan", PBXIP: "127.0.132.2", OMLIP: "127.0.132.3", Secret: strongSecret(4)}, 15*time.Second)
	rec, code, _ := r.rollout()
	requireConverged(t, rec, code)

	// A hand edit on OMniLeads' side: its wizard section now holds another
	// secret (inbound and outbound auth), so each side's probe fails auth.
	omlFile := filepath.Join(r.lab.etc("oml"), "pbxfleet_pjsip_wizard.conf")
	b := readFile(t, omlFile)
	require.Contains(t, b, strongSecret(4))
	require.NoError(t, os.WriteFile(omlFile, []byte(strings.ReplaceAll(b, strongSecret(4), "Someone-Else-Typed-This-1")), 0o600))
	// res_pjsip's reload is done when the command returns (docs/asterisk.md):
	// if it were not, the checks below would pass and the test fail.
	r.lab.rx("oml", "module reload res_pjsip.so")

	for _, tt := range []struct {
		agent, config, far string
	}{
		{bins.PBXNode, r.pbxConf, "oml"},
		{bins.AgentsNode, r.omlConf, "pbx"},
	} {
		farLog, nearLog := r.lab.mark(tt.far), r.lab.mark(map[string]string{"oml": "pbx", "pbx": "oml"}[tt.far])
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, tt.agent, "check", "--config", tt.config, "--log-format", "text")
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		cancel()
		require.Error(t, err, "check must fail against a wrong secret:\n%s", out.String())
		// Asterisk's logger thread writes after the call ended: wait for the
		// far side's line about the refused authentication.
		var farLines []string
		proctest.Eventually(t, 10*time.Second, tt.far+" logged the refused authentication", func() (bool, string) {
			farLines = farLog.since(t)
			for _, l := range farLines {
				if strings.Contains(l, "Failed to authenticate") {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d lines, none about it", len(farLines))
		})
		farMatched, nearMatched := fail2banMatches(t, farLines), fail2banMatches(t, nearLog.since(t))
		for _, l := range farLines {
			if strings.Contains(strings.ToLower(l), "authenticat") {
				t.Logf("%s's log: %s", tt.far, l)
			}
		}
		t.Logf("checked: %s check failed in %s; fail2ban's asterisk filter matched %d line(s) in %s's log (the far side), %d in its own",
			filepath.Base(tt.agent), time.Since(start).Round(100*time.Millisecond), farMatched, tt.far, nearMatched)
		require.LessOrEqual(t, farMatched, 4, "at most 4 fail2ban lines per failed verification on the far side")
		if tt.far == "oml" {
			// res_pjsip's lines are what the stock filter knows: seeing them
			// proves the count is real (chan_sip's are not in it).
			require.GreaterOrEqual(t, farMatched, 1, "the failed probe reached OMniLeads and was logged")
		}
		require.LessOrEqual(t, nearMatched, 4)
		require.NotContains(t, out.String(), strongSecret(4), "the check never prints the secret")
	}
}

// TestDriftThenRepair: a hand edit of a managed file shows as drift in the
// node's status; the next rollout of the same fleet file re-applies that node
// and the drift is gone, on real Asterisk.
func TestDriftThenRepair(t *testing.T) {
	labScript(t)
	r := newRig(t, fleetSite{Scenario: "lan", PBXIP: "127.0.133.2", OMLIP: "127.0.133.3", Secret: strongSecret(5)}, 2*time.Second)
	rec, code, _ := r.rollout()
	requireConverged(t, rec, code)
	dialplan := filepath.Join(r.lab.etc("pbx"), "pbxfleet_extensions.conf")
	want := readFile(t, dialplan)
	require.NoError(t, os.WriteFile(dialplan, []byte(want+"\n; edited by hand\n"), 0o600))
	took := proctest.Eventually(t, 30*time.Second, "pbx status reports drift", func() (bool, string) {
		st, err := r.status("pbx")
		if err != nil {
			return false, err.Error()
		}
		return st.Drift && !st.Healthy, fmt.Sprintf("drift=%v files=%v", st.Drift, st.DriftFiles)
	})
	t.Logf("checked: drift reported %s after the hand edit", took.Round(100*time.Millisecond))

	rec, code, _ = r.rollout()
	requireConverged(t, rec, code)
	for _, n := range siteOf(t, rec).Nodes {
		require.Equal(t, n.Role == "pbx", n.Put, "only the drifted node gets a revision (%s)", n.Role)
	}
	// The header names the revision; the rest is what the fleet file says.
	body := func(s string) string { _, rest, _ := strings.Cut(s, "\n"); return rest }
	require.Equal(t, body(want), body(readFile(t, dialplan)), "the managed file is pbxfleet's again")
	proctest.Eventually(t, 30*time.Second, "pbx status clean", func() (bool, string) {
		st, err := r.status("pbx")
		if err != nil {
			return false, err.Error()
		}
		return !st.Drift && st.Healthy, fmt.Sprintf("drift=%v healthy=%v %s", st.Drift, st.Healthy, st.Detail)
	})
	require.Contains(t, r.lab.rx("pbx", "dialplan show 5000@from-internal-custom"), "098098", "the repaired dialplan runs")
}

// TestFarSideStoppedMidRollout: OMniLeads' Asterisk stops just after a secret
// rotation starts; the site fails and the rollout ends rolled back or failed;
// when OMniLeads returns, the keeper's repair brings both nodes to the restore
// revision by itself, healthy, with the previous secret.
func TestFarSideStoppedMidRollout(t *testing.T) {
	labScript(t)
	r := newRig(t, fleetSite{Scenario: "lan", PBXIP: "127.0.134.2", OMLIP: "127.0.134.3", Secret: strongSecret(6),
		QualifyFreq: 5}, 2*time.Second)
	rec, code, _ := r.rollout()
	requireConverged(t, rec, code)
	first := siteOf(t, rec)

	r.site.Secret = strongSecret(7)
	r.lab.stop("oml")
	rec, code, took := r.rollout()
	require.NotEqual(t, 0, code, "a rollout whose far side is down does not succeed")
	s := siteOf(t, rec)
	require.Contains(t, []orchestrator.SiteOutcome{orchestrator.SiteFailed, orchestrator.SiteUnreachable}, s.Outcome)
	t.Logf("checked: far side stopped, rollout %s (%s) after %s, site %s: %s", rec.Phase, rec.Reason, took.Round(time.Second), s.Outcome, s.Message)
	// D7: OMniLeads' agent put its previous files back but Asterisk was not
	// running to read them: that is a failure, not a rollback.
	oml := nodeResult(t, s, "oml")
	require.Equal(t, events.OutcomeFailed, oml.Outcome, oml.Reason)
	require.Contains(t, oml.Reason, "the reload failed")

	r.lab.start("oml")
	took = proctest.Eventually(t, 3*time.Minute, "both nodes healthy on the restored secret", func() (bool, string) {
		var desc []string
		ok := true
		for _, role := range []string{"pbx", "oml"} {
			st, err := r.status(role)
			if err != nil {
				return false, err.Error()
			}
			ok = ok && st.Healthy && st.Outcome == events.OutcomeConverged
			desc = append(desc, fmt.Sprintf("%s rev %d %s healthy=%v %s", role, st.AppliedRevision, st.Outcome, st.Healthy, st.Detail))
		}
		return ok, strings.Join(desc, "; ")
	})
	t.Logf("checked: OMniLeads back, the site restored and healthy %s later, without a new rollout", took.Round(time.Second))
	require.Contains(t, readFile(t, filepath.Join(r.lab.etc("pbx"), "pbxfleet_sip.conf")), "secret="+strongSecret(6),
		"the previous intent (the first secret) is back")
	st, err := r.status("pbx")
	require.NoError(t, err)
	require.Greater(t, st.AppliedRevision, nodeRevision(first, "pbx"), "restored as a new revision")
}

func nodeRevision(s orchestrator.SiteState, role string) uint64 {
	for _, n := range s.Nodes {
		if n.Role == role {
			return n.Revision
		}
	}
	return 0
}
