package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// didDialplan gives OML an inbound route for DID 098098 that answers and hangs up.
const didDialplan = `[from-pbx]
exten => 098098,1,Answer()
 same => n,NoOp(DID 098098 reached OML)
 same => n,Hangup()
`

func TestTrunkScenarios(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		site site
		// what the two qualify checks show
		peerStatus, contactStatus string
		// probe outcomes (DIALSTATUS:HANGUPCAUSE), "" to skip
		pbxToOML, omlToPBX, did string
	}{
		{
			name:       "converged trunk proves both directions",
			site:       site{pbxAddr: "127.0.10.2", omlAddr: "127.0.10.3", omlExtraDialplan: didDialplan},
			peerStatus: "OK (", contactStatus: "Avail",
			pbxToOML: "CHANUNAVAIL:1", omlToPBX: "CHANUNAVAIL:1", did: "ANSWER:16",
		},
		{
			// The seed's lan block: secret=omnileads on the PBX, issabelOML on OML.
			// Both qualify checks are green, yet no call gets through (docs/asterisk.md#how-the-two-sides-relate).
			name:       "seed mismatched secret",
			site:       site{pbxAddr: "127.0.11.2", omlAddr: "127.0.11.3", pbxSecret: "omnileads", omlInPass: "issabelOML", omlOutPass: "issabelOML"},
			peerStatus: "OK (", contactStatus: "Avail",
			pbxToOML: "CONGESTION:21", omlToPBX: "CHANUNAVAIL:21",
		},
		{
			name:       "wrong OML outbound password",
			site:       site{pbxAddr: "127.0.12.2", omlAddr: "127.0.12.3", omlOutPass: "not-the-secret"},
			peerStatus: "OK (", contactStatus: "Avail",
			pbxToOML: "CHANUNAVAIL:1", omlToPBX: "CHANUNAVAIL:21",
		},
		{
			name:       "wrong user: PBX defaultuser is not OML's inbound user",
			site:       site{pbxAddr: "127.0.13.2", omlAddr: "127.0.13.3", pbxUser: "issabel", omlInUser: "pbx"},
			peerStatus: "OK (", contactStatus: "Avail",
			pbxToOML: "CONGESTION:21", omlToPBX: "CHANUNAVAIL:1",
		},
		{
			name:       "OML without any trunk: qualify green, probe refused",
			site:       site{pbxAddr: "127.0.14.2", omlAddr: "127.0.14.3", noWizard: true},
			peerStatus: "OK (",
			pbxToOML:   "CONGESTION:21",
		},
		{
			name:       "wrong port: nothing listens",
			site:       site{pbxAddr: "127.0.15.2", omlAddr: "127.0.15.3", peerPort: 5170},
			peerStatus: "UNREACHABLE", contactStatus: "Avail",
			// chan_sip refuses to dial an UNREACHABLE peer (cause 20), as real
			// Asterisk 20.20.1 does (test/realasterisk TestLabAgreesWithRealAsterisk).
			pbxToOML: "CHANUNAVAIL:20",
		},
		{
			// 5162 is OML's NAT transport: it answers, and pjsip identifies the PBX by
			// address whatever transport the request arrived on.
			name:       "port of another OML transport still answers",
			site:       site{pbxAddr: "127.0.16.2", omlAddr: "127.0.16.3", peerPort: 5162},
			peerStatus: "OK (", contactStatus: "Avail",
			pbxToOML: "CHANUNAVAIL:1",
		},
		{
			name:       "OMniLeads 2.x profile: one transport on 5060",
			site:       site{pbxAddr: "127.0.17.2", omlAddr: "127.0.17.3", peerPort: 5060, profile: "2.x"},
			peerStatus: "OK (", contactStatus: "Avail",
			pbxToOML: "CHANUNAVAIL:1", omlToPBX: "CHANUNAVAIL:1",
		},
	}
	for _, tc := range tests {
		for _, instant := range []bool{false, true} {
			name := tc.name
			if instant {
				name += " (instant)"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := tc.site
				if instant {
					s.instant, s.network = true, NewNetwork()
				}
				p := startPair(t, s)
				endpoint := "issabel"
				if s.noWizard {
					endpoint = ""
				}
				qualified(t, p, "omnileads", endpoint)
				assert.Contains(t, rx(t, p.pbx, "sip show peers"), tc.peerStatus)
				if tc.contactStatus != "" {
					assert.Contains(t, rx(t, p.oml, "pjsip show endpoints"), " "+tc.contactStatus+" ")
				} else {
					assert.Equal(t, "No objects found.\n\n", rx(t, p.oml, "pjsip show endpoints"))
				}
				if tc.pbxToOML != "" {
					assert.Equal(t, tc.pbxToOML, probe(t, p.pbx, "99999"), "PBX -> OML")
				}
				if tc.omlToPBX != "" {
					assert.Equal(t, tc.omlToPBX, probe(t, p.oml, "77777"), "OML -> PBX")
				}
				if tc.did != "" {
					assert.Equal(t, tc.did, probe(t, p.pbx, "098098"), "PBX -> OML DID")
				}
			})
		}
	}
}

func TestFaultStopped(t *testing.T) {
	t.Parallel()
	p := startPair(t, site{pbxAddr: "127.0.20.2", omlAddr: "127.0.20.3"})
	qualified(t, p, "omnileads", "issabel")

	p.oml.SetFault(FaultStopped)
	out, code, err := p.oml.Run(context.Background(), "pjsip show endpoints")
	require.NoError(t, err)
	assert.Equal(t, 1, code)
	assert.Equal(t, "Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)\n", out)
	// SIP is silent: the PBX's qualify goes unanswered, and chan_sip then
	// refuses to dial the UNREACHABLE peer.
	rx(t, p.pbx, "sip qualify peer omnileads")
	waitFor(t, "UNREACHABLE", func() bool { return strings.Contains(rx(t, p.pbx, "sip show peers"), "UNREACHABLE") })
	assert.Equal(t, "CHANUNAVAIL:20", probe(t, p.pbx, "99999"))

	// A restart reads the configuration again: a trunk renamed meanwhile is gone.
	wiz := filepath.Join(p.omlDir, "pbxfleet_pjsip_wizard.conf")
	b, err := os.ReadFile(wiz)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(wiz, []byte(strings.Replace(string(b), "[issabel]", "[issabel2]", 1)), 0o644))
	p.oml.SetFault(FaultNone)
	assert.Contains(t, rx(t, p.oml, "pjsip show endpoints"), "issabel2 ")
	assert.Contains(t, rx(t, p.oml, "pjsip show endpoints"), " NonQual ", "qualify states start over")
}

func TestFaultSIPDropped(t *testing.T) {
	t.Parallel()
	p := startPair(t, site{pbxAddr: "127.0.21.2", omlAddr: "127.0.21.3"})
	qualified(t, p, "omnileads", "issabel")
	p.pbx.SetFault(FaultSIPDropped)
	// The CLI still answers, but no SIP goes in or out of the PBX.
	rx(t, p.oml, "pjsip qualify issabel")
	waitFor(t, "Unavail", func() bool { return strings.Contains(rx(t, p.oml, "pjsip show endpoints"), " Unavail ") })
	rx(t, p.pbx, "sip qualify peer omnileads")
	waitFor(t, "UNREACHABLE", func() bool { return strings.Contains(rx(t, p.pbx, "sip show peers"), "UNREACHABLE") })
	assert.Equal(t, "NOANSWER:18", probe(t, p.oml, "77777"))
	p.pbx.SetFault(FaultNone)
	assert.Equal(t, "CHANUNAVAIL:1", probe(t, p.oml, "77777"))
}

func TestFaultStale(t *testing.T) {
	t.Parallel()
	p := startPair(t, site{pbxAddr: "127.0.22.2", omlAddr: "127.0.22.3"})
	peerFile := filepath.Join(p.pbxDir, "pbxfleet_sip.conf")
	b, err := os.ReadFile(peerFile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(peerFile, []byte(strings.Replace(string(b), "[omnileads]", "[omnileads2]", 1)), 0o644))

	p.pbx.SetFault(FaultStale)
	assert.Empty(t, rx(t, p.pbx, "sip reload"))
	assert.Equal(t, "Peer omnileads2 not found.\n\n", rx(t, p.pbx, "sip show peer omnileads2"),
		"sip reload returns before the reload lands (chan_sip reloads in its monitor thread)")
	p.pbx.reloading.Wait()
	assert.Equal(t, "Dialplan reloaded.\n", rx(t, p.pbx, "dialplan reload"))
	assert.Equal(t, "Peer omnileads2 not found.\n\n", rx(t, p.pbx, "sip show peer omnileads2"), "running config unchanged")

	p.pbx.SetFault(FaultNone)
	rx(t, p.pbx, "sip reload")
	p.pbx.reloading.Wait()
	assert.Contains(t, rx(t, p.pbx, "sip show peer omnileads2"), "  * Name       : omnileads2\n")
	assert.Equal(t, "Peer omnileads not found.\n\n", rx(t, p.pbx, "sip show peer omnileads"))
}

func TestReloadOnlyOnCommand(t *testing.T) {
	t.Parallel()
	p := startPair(t, site{pbxAddr: "127.0.23.2", omlAddr: "127.0.23.3"})
	writeFile(t, p.pbxDir, "pbxfleet_extensions.conf", "[from-internal-custom]\nexten => 4242,1,NoOp(new)\n")
	assert.Contains(t, rx(t, p.pbx, "dialplan show from-internal-custom"), "'5000' =>", "not reloaded yet")
	rx(t, p.pbx, "dialplan reload")
	assert.NotContains(t, rx(t, p.pbx, "dialplan show from-internal-custom"), "'5000' =>")
	assert.Contains(t, rx(t, p.pbx, "dialplan show from-internal-custom"), "'4242' =>")

	// A reload of a broken file keeps the running configuration, as Asterisk does.
	appendInclude(t, p.omlDir, "oml_pjsip_wizard_custom.conf", "missing.conf")
	assert.Equal(t, "Module 'res_pjsip.so' reloaded successfully.\n", rx(t, p.oml, "module reload res_pjsip.so"))
	assert.Contains(t, rx(t, p.oml, "pjsip show endpoints"), "Objects found: 1")
}

func TestCLI(t *testing.T) {
	t.Parallel()
	p := startPair(t, site{pbxAddr: "127.0.24.2", omlAddr: "127.0.24.3"})
	tests := []struct {
		host *Host
		cmd  string
		want string
	}{
		{p.pbx, "core show version", "pbxfleet lab (Asterisk 20.20.1 CLI format)\n"},
		{p.pbx, "pjsip show endpoints", "No such command 'pjsip show endpoints' (type 'core show help pjsip show endpoints' for other possible commands)\n"},
		{p.oml, "sip show peers", "No such command 'sip show peers' (type 'core show help sip show peers' for other possible commands)\n"},
		{p.pbx, "sip qualify peer nobody", "Peer 'nobody' not found\n"},
		{p.oml, "pjsip qualify nobody", "Unable to retrieve endpoint nobody\nCommand 'pjsip qualify nobody' failed.\n"},
		{p.oml, "pjsip qualify issabel", "Qualifying AOR 'issabel' on endpoint 'issabel'\n"},
		{p.oml, "pjsip show endpoint nobody", "Unable to find object nobody.\n\n"},
		{p.pbx, "database get pbxfleet nothing", "Database entry not found.\n"},
		{p.pbx, "database put pbxfleet k v 1", "Updated database successfully\n"},
		{p.pbx, "database get pbxfleet k", "Value: v 1\n"},
		{p.pbx, "dialplan show from-internal-custom", "[ Context 'from-internal-custom' created by 'pbx_config' ]\n" +
			"  '5000' =>         1. Dial(SIP/omnileads/098098)                 [pbxfleet_extensions.conf:2]\n" +
			"  '99999' =>        1. Hangup(1)                                  [pbxfleet_extensions.conf:4]\n" +
			"  '_1XXXX.' =>      1. Dial(SIP/omnileads/${EXTEN})               [pbxfleet_extensions.conf:3]\n" +
			"\n-= 3 extensions (3 priorities) in 1 context. =-\n"},
		{p.pbx, "dialplan show 5000@from-internal", "[ Included context 'from-internal-custom' created by 'pbx_config' ]\n" +
			"  '5000' =>         1. Dial(SIP/omnileads/098098)                 [pbxfleet_extensions.conf:2]\n" +
			"\n-= 1 extension (1 priority) in 1 context. =-\n"},
		{p.pbx, "dialplan show 5001@from-internal-custom", "There is no existence of 5001@from-internal-custom extension\n" +
			"Command 'dialplan show 5001@from-internal-custom' failed.\n"},
		{p.pbx, "dialplan show pbxfleet-probe", "[ Context 'pbxfleet-probe' created by 'pbx_config' ]\n" +
			"  '_X.' =>          1. Set(DB(pbxfleet/probe)=started)            [pbxfleet_extensions.conf:6]\n" +
			"                    2. Dial(SIP/omnileads/${EXTEN},5,g)           [pbxfleet_extensions.conf:7]\n" +
			"                    3. Set(DB(pbxfleet/probe)=${DIALSTATUS}:${HANGUPCAUSE}) [pbxfleet_extensions.conf:8]\n" +
			"                    4. Hangup()                                   [pbxfleet_extensions.conf:9]\n" +
			"\n-= 1 extension (4 priorities) in 1 context. =-\n"},
		{p.pbx, "channel originate Local/123@nowhere application Wait 1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.cmd, func(t *testing.T) {
			assert.Equal(t, tc.want, rx(t, tc.host, tc.cmd))
		})
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, WriteStockFiles(dir, RolePBX, "127.0.25.2", ""))
	h, err := NewHost(Config{Role: RolePBX, Name: "lc.pbx", ConfigDir: dir, Address: "127.0.25.2"})
	require.NoError(t, err)
	out, code, err := h.Run(context.Background(), "sip show peers")
	require.NoError(t, err)
	assert.Equal(t, 1, code, "not started: not running")
	assert.Equal(t, notRunningText, out)
	require.NoError(t, h.Start(context.Background()))
	assert.Error(t, h.Start(context.Background()), "started twice")
	// The port is taken while the host runs and free after Close.
	assert.False(t, freeUDP("127.0.25.2:5060"))
	require.NoError(t, h.Close())
	require.NoError(t, h.Close())
	assert.True(t, freeUDP("127.0.25.2:5060"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err = h.Run(ctx, "sip show peers")
	assert.ErrorIs(t, err, context.Canceled)

	_, err = NewHost(Config{Role: "asterisk", ConfigDir: "", Address: "10.0.0.1"})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "role")
	assert.Contains(t, err.Error(), "loopback")
	assert.Error(t, WriteStockFiles(dir, RoleOML, "127.0.25.3", "3.x"))
}

func TestInstantAddressInUse(t *testing.T) {
	t.Parallel()
	n := NewNetwork()
	var hosts []*Host
	for i := range 2 {
		dir := t.TempDir()
		require.NoError(t, WriteStockFiles(dir, RolePBX, "127.0.26.2", ""))
		h, err := NewHost(Config{Role: RolePBX, Name: fmt.Sprint("dup", i), ConfigDir: dir, Address: "127.0.26.2", Instant: true, Network: n})
		require.NoError(t, err)
		hosts = append(hosts, h)
	}
	require.NoError(t, hosts[0].Start(context.Background()))
	assert.ErrorIs(t, hosts[1].Start(context.Background()), ErrAddressInUse)
	require.NoError(t, hosts[0].Close())
	require.NoError(t, hosts[1].Close())
}

func TestRestartRebinds(t *testing.T) {
	t.Parallel()
	p := startPair(t, site{pbxAddr: "127.0.27.2", omlAddr: "127.0.27.3"})
	assert.False(t, freeUDP("127.0.27.3:5162"))
	p.oml.SetFault(FaultStopped)
	conf := filepath.Join(p.omlDir, "pjsip.conf")
	b, err := os.ReadFile(conf)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(conf, []byte(strings.Replace(string(b), ":5162", ":5172", 1)), 0o644))
	p.oml.SetFault(FaultNone)
	assert.True(t, freeUDP("127.0.27.3:5162"), "old transport released")
	assert.False(t, freeUDP("127.0.27.3:5172"), "new transport bound")
	qualified(t, p, "omnileads", "issabel")
	assert.Equal(t, "CHANUNAVAIL:1", probe(t, p.pbx, "99999"))
}

// TestAuthFailuresAsAsteriskLogsThem: one probe call with a wrong secret
// costs the far side what real Asterisk 20.20.1 logged for it
// (test/realasterisk TestWrongSecretIsGentleWithFail2ban): 3 res_pjsip lines
// on OMniLeads for the PBX's call (chan_sip answers 3 challenges), 1 chan_sip
// line on the PBX for OMniLeads' call (res_pjsip answers one).
func TestAuthFailuresAsAsteriskLogsThem(t *testing.T) {
	t.Parallel()
	p := startPair(t, site{pbxAddr: "127.0.26.12", omlAddr: "127.0.26.13", pbxSecret: "omnileads", omlInPass: "issabelOML", omlOutPass: "issabelOML"})
	qualified(t, p, "omnileads", "issabel")
	tests := []struct {
		from, far *Host
		number    string
		want      int
		outcome   string
	}{
		{p.pbx, p.oml, "99999", 3, "CONGESTION:21"},
		{p.oml, p.pbx, "77777", 1, "CHANUNAVAIL:21"},
	}
	for _, tt := range tests {
		before := tt.far.AuthFailures()
		assert.Equal(t, tt.outcome, probe(t, tt.from, tt.number))
		assert.Equal(t, tt.want, tt.far.AuthFailures()-before, "auth failures logged by %s for one probe", tt.far.Name())
	}
}
