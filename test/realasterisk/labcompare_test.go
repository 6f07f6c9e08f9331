package realasterisk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/lab"
	"github.com/pbxfleet/pbxfleet/internal/proctest"
)

// knownLabDifferences lists, per command, the lines where the lab answers
// differently from Asterisk 20.20.1 on purpose, each with its reason. A
// difference not listed here is a lab bug.
var knownLabDifferences = map[string]map[string]string{
	"sip show peer omnileads": {
		"  SIP Options  : 100rel histinfo timer": "chan_sip records the far side's SIP options from the probe call's " +
			"responses; the lab does not model SIP options and prints (none), as Asterisk does before any call. " +
			"pbxfleet never reads this line.",
	},
}

// labNormalizers mask what legitimately differs between any two runs: round
// trip times, contact hashes, the instances' addresses (mapped before).
var labNormalizers = []struct {
	re   *regexp.Regexp
	with string
}{
	// A padded column follows the RTT in `sip show peers`: its width follows the value.
	{regexp.MustCompile(`\((\d+) ms\) +`), "(N ms) "},
	{regexp.MustCompile(`\((\d+) ms\)`), "(N ms)"},
	{regexp.MustCompile(`\b[0-9a-f]{10}\b`), "HASH"},
	{regexp.MustCompile(`(Avail|Unavail|Unknown)\s+\d+\.\d+`), "$1 RTT"}, // right-aligned: the width follows the value
	{regexp.MustCompile(`[ \t]+\n`), "\n"},
}

func normalize(s string, addrs map[string]string) string {
	for from, to := range addrs {
		s = strings.ReplaceAll(s, from, to)
	}
	for _, n := range labNormalizers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	return s
}

// TestLabAgreesWithRealAsterisk converges a site on real Asterisk, copies the
// managed files pbxfleet wrote into two lab hosts (the addresses mapped),
// runs the same CLI commands on both and compares the answers line by line.
func TestLabAgreesWithRealAsterisk(t *testing.T) {
	labScript(t)
	const realPBX, realOML, labPBX, labOML = "127.0.137.2", "127.0.137.3", "127.0.138.2", "127.0.138.3"
	r := newRig(t, fleetSite{Scenario: "lan", PBXIP: realPBX, OMLIP: realOML, Secret: strongSecret(12), QualifyFreq: 5}, 15*time.Second)
	rec, code, _ := r.rollout()
	requireConverged(t, rec, code)
	// The agents are done: stop them so that nothing changes either side
	// while the commands run.
	r.pbxAgent.Stop()
	r.omlAgent.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	toLab := map[string]string{realPBX: labPBX, realOML: labOML}
	hosts := map[string]*lab.Host{}
	for _, h := range []struct {
		role lab.Role
		addr string
	}{{lab.RolePBX, labPBX}, {lab.RoleOML, labOML}} {
		dir := filepath.Join(t.TempDir(), string(h.role))
		require.NoError(t, lab.WriteStockFiles(dir, h.role, h.addr, "1.x"))
		copyManaged(t, r.lab.etc(string(h.role)), dir, toLab)
		host, err := lab.NewHost(lab.Config{Role: h.role, Name: "compare." + string(h.role), ConfigDir: dir, Address: h.addr})
		require.NoError(t, err)
		require.NoError(t, host.Start(ctx))
		t.Cleanup(func() { _ = host.Close() })
		hosts[string(h.role)] = host
	}
	labRun := func(role, cmd string) string {
		out, _, err := hosts[role].Run(ctx, cmd)
		require.NoError(t, err)
		return out
	}
	// Both sides qualified, so that the answers describe the same state:
	// res_pjsip schedules a contact's first qualify anywhere within its
	// frequency, so OMniLeads' side is asked now, as agents-node does.
	for _, side := range []struct {
		name string
		run  func(role, cmd string) string
	}{{"real", r.lab.rx}, {"lab", labRun}} {
		side.run("oml", "pjsip qualify issabel")
		proctest.Eventually(t, 30*time.Second, side.name+" trunk qualified", func() (bool, string) {
			p := side.run("pbx", "sip show peers")
			e := side.run("oml", "pjsip show endpoints")
			return strings.Contains(p, " OK (") && strings.Contains(e, "Avail "), lastLine(p) + " / " + e
		})
	}

	commands := []struct{ role, cmd string }{
		{"pbx", "sip show peers"},
		{"pbx", "sip show peer omnileads"},
		{"pbx", "sip show peer nosuchpeer"},
		{"pbx", "dialplan show from-internal-custom"},
		{"pbx", "dialplan show 5000@from-internal-custom"},
		{"pbx", "dialplan show pbxfleet-probe"},
		{"pbx", "dialplan show nosuchcontext"},
		{"pbx", "database get pbxfleet nosuchkey"},
		{"oml", "pjsip show endpoints"},
		{"oml", "pjsip show endpoint issabel"},
		{"oml", "pjsip show endpoint nosuchendpoint"},
		// Not "dialplan show from-pbx": that context is OMniLeads' own (not
		// managed), which real OMniLeads builds from includes and the lab's
		// stock files spell out; pbxfleet never reads it.
		{"oml", "dialplan show pbxfleet-probe"},
		{"oml", "module reload res_pjsip.so"},
		{"pbx", "dialplan reload"},
		{"pbx", "sip reload"},
	}
	var unexplained []string
	compared := 0
	for _, c := range commands {
		real := normalize(r.lab.rx(c.role, c.cmd), toLab)
		sim := normalize(labRun(c.role, c.cmd), nil)
		known := knownLabDifferences[c.cmd]
		realLines, simLines := strings.Split(real, "\n"), strings.Split(sim, "\n")
		for i := range max(len(realLines), len(simLines)) {
			var rl, sl string
			if i < len(realLines) {
				rl = realLines[i]
			}
			if i < len(simLines) {
				sl = simLines[i]
			}
			compared++
			if rl == sl {
				continue
			}
			if reason, ok := known[rl]; ok {
				t.Logf("known difference in %q: %q (%s)", c.cmd, rl, reason)
				continue
			}
			unexplained = append(unexplained, fmt.Sprintf("%s %q line %d:\n  real: %q\n  lab:  %q", c.role, c.cmd, i+1, rl, sl))
		}
	}
	t.Logf("compared %d commands, %d lines", len(commands), compared)
	require.Empty(t, unexplained, "the lab answers differently from Asterisk 20.20.1:\n%s", strings.Join(unexplained, "\n"))

	// Behaviour: a probe call from each side while the trunk is up, then
	// from the PBX once OMniLeads is down and chan_sip has marked the peer
	// UNREACHABLE (chan_sip refuses to dial it: cause 20).
	for _, role := range []string{"pbx", "oml"} {
		realOut, labOut := probeCall(t, r.lab.rx, role), probeCall(t, labRun, role)
		t.Logf("probe from %s, trunk up: real %s, lab %s", role, realOut, labOut)
		require.Equal(t, realOut, labOut, "probe from %s with the trunk up", role)
	}
	r.lab.stop("oml")
	hosts["oml"].SetFault(lab.FaultStopped)
	for _, side := range []struct {
		name string
		run  func(role, cmd string) string
	}{{"real", r.lab.rx}, {"lab", labRun}} {
		proctest.Eventually(t, 90*time.Second, side.name+" peer unreachable", func() (bool, string) {
			p := side.run("pbx", "sip show peers")
			return strings.Contains(p, "UNREACHABLE"), lastLine(p)
		})
	}
	realOut, labOut := probeCall(t, r.lab.rx, "pbx"), probeCall(t, labRun, "pbx")
	t.Logf("probe from pbx, OMniLeads down: real %s, lab %s", realOut, labOut)
	require.Equal(t, realOut, labOut, "probe from the PBX to an UNREACHABLE peer")
}

// probeCall places one probe call as the agents do and returns the
// DIALSTATUS:HANGUPCAUSE the probe context recorded.
func probeCall(t *testing.T, run func(role, cmd string) string, role string) string {
	t.Helper()
	run(role, "database put pbxfleet probe pending")
	run(role, "channel originate Local/99999@pbxfleet-probe application Wait 1") // the fleet's probe number
	var last string
	proctest.Eventually(t, 15*time.Second, role+" probe outcome", func() (bool, string) {
		last = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(run(role, "database get pbxfleet probe")), "Value: "))
		return last != "pending" && last != "started", last
	})
	return last
}

// copyManaged copies the pbxfleet files of a real config dir into a lab one,
// the addresses mapped, and includes them from the parent files as the
// agents do.
func copyManaged(t *testing.T, from, to string, addrs map[string]string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	require.NoError(t, err)
	copied := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "pbxfleet_") {
			continue
		}
		b := readFile(t, filepath.Join(from, e.Name()))
		for a, b2 := range addrs {
			b = strings.ReplaceAll(b, a, b2)
		}
		require.NoError(t, os.WriteFile(filepath.Join(to, e.Name()), []byte(b), 0o644))
		copied++
	}
	require.Equal(t, 2, copied, "two managed files in %s", from)
	for _, parent := range []string{"sip_custom.conf", "extensions_custom.conf", "oml_pjsip_wizard_custom.conf", "oml_extensions_custom.conf"} {
		real, err := os.ReadFile(filepath.Join(from, parent))
		if err != nil {
			continue
		}
		var includes []string
		for _, l := range strings.Split(string(real), "\n") {
			if strings.HasPrefix(l, "#include") && strings.Contains(l, "pbxfleet_") {
				includes = append(includes, l)
			}
		}
		f, err := os.OpenFile(filepath.Join(to, parent), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		require.NoError(t, err)
		_, err = f.WriteString("\n" + strings.Join(includes, "\n") + "\n")
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
}
