package lab

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The captures were made with the PBX on 127.0.0.2:5060 and OML on 127.0.0.3.
const (
	fixturePBX = "127.0.0.2"
	fixtureOML = "127.0.0.3"
)

var (
	okRTT      = regexp.MustCompile(`OK \(\d+ ms\) *`)
	availRTT   = regexp.MustCompile(`Avail +\d+\.\d{3}`)
	contactHex = regexp.MustCompile(`([0-9a-f]{10}) (Avail|Unavail|NonQual)`)
)

// normalise blanks what a capture cannot share with a live run: RTT figures
// (keeping column widths), addresses when the fixture ones were busy, and then
// the contact hash (an MD5 of the address).
func normalise(s string, pbx, oml string) string {
	s = okRTT.ReplaceAllStringFunc(s, func(m string) string {
		if !strings.HasSuffix(m, " ") {
			return "OK (1 ms)" // the detail view has no padding
		}
		return fmt.Sprintf("%-*s", len(m), "OK (1 ms)")
	})
	s = availRTT.ReplaceAllString(s, "Avail "+fmt.Sprintf("%11s", "0.395"))
	if pbx != fixturePBX || oml != fixtureOML {
		s = strings.ReplaceAll(s, pbx+":", "PBXADDR:")
		s = strings.ReplaceAll(s, oml+":", "OMLADDR:")
		s = strings.ReplaceAll(s, pbx, "PBXADDR")
		s = strings.ReplaceAll(s, oml, "OMLADDR")
		s = contactHex.ReplaceAllString(s, "HASHHASHHA $2")
	}
	return s
}

// goldenAddrs uses the capture's own addresses when they are free.
func goldenAddrs(t *testing.T) (string, string) {
	if freeUDP(fixturePBX+":5060", fixtureOML+":5161", fixtureOML+":5162", fixtureOML+":5163") {
		return fixturePBX, fixtureOML
	}
	t.Logf("fixture addresses busy: comparing after normalising addresses")
	return "127.0.9.2", "127.0.9.3"
}

func TestGoldenAgainstAsterisk20Captures(t *testing.T) {
	pbxAddr, omlAddr := goldenAddrs(t)
	// The captures' OML also had [issabel-nat] (no inbound user: it defaults to the
	// section name) towards 127.0.0.9:5060, where nothing listened.
	extra := `[issabel-nat]
type=wizard
transport=trunk-nat-transport
accepts_registrations=no
sends_auth=yes
sends_registrations=no
accepts_auth=yes
aor/qualify_frequency=10
endpoint/context=from-pbx
remote_hosts=127.0.0.9:5060
outbound_auth/username=omnileads
outbound_auth/password=issabelOML
inbound_auth/password=issabelOML
endpoint/from_user=omnileads
`
	p := startPair(t, site{pbxAddr: pbxAddr, omlAddr: omlAddr, pbxSecret: "omnileads", omlInPass: "issabelOML",
		omlOutPass: "issabelOML", qualifyFreq: 10, omlQualifyFreq: 10, extraWizard: extra})
	golden := func(t *testing.T, h *Host, cmd, fixture string) {
		t.Helper()
		got := normalise(rx(t, h, cmd), pbxAddr, omlAddr)
		want := normalise(strings.NewReplacer(fixturePBX, pbxAddr, fixtureOML, omlAddr).Replace(readFixture(t, fixture)), pbxAddr, omlAddr)
		assert.Equal(t, want, got)
	}
	sipGolden := func(t *testing.T, cmd, fixture string) { t.Helper(); golden(t, p.pbx, cmd, fixture) }
	pjGolden := func(t *testing.T, cmd, fixture string) { t.Helper(); golden(t, p.oml, cmd, fixture) }

	qualified(t, p, "omnileads", "issabel")

	t.Run("sip show peers OK", func(t *testing.T) {
		sipGolden(t, "sip show peers", "pbx_sip_show_peers_OK.txt")
	})
	t.Run("sip show peer omnileads", func(t *testing.T) {
		sipGolden(t, "sip show peer omnileads", "pbx_sip_show_peer_omnileads_OK.txt")
	})
	t.Run("pjsip show endpoints Avail", func(t *testing.T) {
		// The capture shows only [issabel]; drop the lab's second endpoint block.
		full := rx(t, p.oml, "pjsip show endpoints")
		require.Contains(t, full, "Objects found: 2")
		out := full[:strings.Index(full, " Endpoint:  issabel-nat")] + "\nObjects found: 1\n\n"
		got := normalise(out, pbxAddr, omlAddr)
		want := normalise(strings.NewReplacer(fixturePBX, pbxAddr, fixtureOML, omlAddr).Replace(
			readFixture(t, "oml_pjsip_show_endpoints_Avail.txt")), pbxAddr, omlAddr)
		assert.Equal(t, want, got)
	})
	t.Run("pjsip show endpoint issabel", func(t *testing.T) {
		pjGolden(t, "pjsip show endpoint issabel", "oml_pjsip_show_endpoint_issabel.txt")
	})
	t.Run("module reload res_pjsip.so", func(t *testing.T) {
		assert.Equal(t, readFixture(t, "oml_module_reload_res_pjsip.txt"), rx(t, p.oml, "module reload res_pjsip.so"))
	})
	t.Run("pjsip reload does not exist", func(t *testing.T) {
		assert.Equal(t, readFixture(t, "oml_pjsip_reload_NO_SUCH_COMMAND.txt"), rx(t, p.oml, "pjsip reload"))
	})
	t.Run("sip reload", func(t *testing.T) {
		assert.Equal(t, readFixture(t, "pbx_sip_reload.txt"), rx(t, p.pbx, "sip reload"))
	})
	t.Run("dialplan reload", func(t *testing.T) {
		assert.Equal(t, readFixture(t, "pbx_dialplan_reload.txt"), rx(t, p.pbx, "dialplan reload"))
	})
	t.Run("rx exit codes", func(t *testing.T) {
		codes := readFixture(t, "rx_exit_codes.txt")
		out, code, err := p.pbx.Run(context.Background(), "sip show peer nosuchpeer")
		require.NoError(t, err)
		assert.Contains(t, codes, "'sip show peer nosuchpeer'; echo \"exit code: $?\"\n"+out+"exit code: 0\n")
		assert.Equal(t, 0, code)
		out, code, err = p.pbx.Run(context.Background(), "dialplan show nonexist")
		require.NoError(t, err)
		assert.Contains(t, codes, "'dialplan show nonexist'; echo \"exit code: $?\"\n"+out+"exit code: 0\n")
		assert.Equal(t, 0, code)
		out = rx(t, p.oml, "pjsip reload")
		assert.Contains(t, codes, "'pjsip reload'; echo \"exit code: $?\"\n"+out+"exit code: 0\n")
	})

	// Stop OML: the PBX's next qualify finds nobody.
	p.oml.SetFault(FaultStopped)
	t.Run("not running", func(t *testing.T) {
		out, code, err := p.oml.Run(context.Background(), "core show version")
		require.NoError(t, err)
		assert.Equal(t, readFixture(t, "oml_rx_when_not_running.txt"), out+fmt.Sprintf("exit code: %d\n", code))
	})
	rx(t, p.pbx, "sip qualify peer omnileads")
	waitFor(t, "UNREACHABLE", func() bool { return strings.Contains(rx(t, p.pbx, "sip show peers"), "UNREACHABLE") })
	t.Run("sip show peers UNREACHABLE", func(t *testing.T) {
		sipGolden(t, "sip show peers", "pbx_sip_show_peers_UNREACHABLE_oml_stopped.txt")
	})

	// Restart OML, stop the PBX: OML's qualifies find nobody.
	p.oml.SetFault(FaultNone)
	p.pbx.SetFault(FaultStopped)
	out, code, err := p.pbx.Run(context.Background(), "sip show peers")
	require.NoError(t, err)
	assert.Equal(t, readFixture(t, "pbx_rx_when_not_running.txt"), out+fmt.Sprintf("exit code: %d\n", code))
	rx(t, p.oml, "pjsip qualify issabel")
	rx(t, p.oml, "pjsip qualify issabel-nat")
	waitFor(t, "both Unavail", func() bool {
		return strings.Count(rx(t, p.oml, "pjsip show endpoints"), " Unavail ") == 2
	})
	t.Run("pjsip show endpoints Unavail", func(t *testing.T) {
		pjGolden(t, "pjsip show endpoints", "oml_pjsip_show_endpoints_Unavail_pbx_stopped.txt")
	})
}

func TestGoldenNoWizard(t *testing.T) {
	p := startPair(t, site{pbxAddr: "127.0.9.12", omlAddr: "127.0.9.13", noWizard: true})
	assert.Equal(t, readFixture(t, "oml_pjsip_show_endpoints_NO_WIZARD.txt"), rx(t, p.oml, "pjsip show endpoints"))
}
