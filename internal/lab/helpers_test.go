package lab

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/testfixtures"
)

// pollBound bounds every wait for an asynchronous outcome; it is a limit, not a
// speed assertion.
const pollBound = 20 * time.Second

// readFixture returns one real Asterisk capture, unmodified.
func readFixture(t testing.TB, name string) string {
	t.Helper()
	return string(testfixtures.Read(t, name))
}

// site describes one PBX/OML pair the way an agent would configure it; the zero
// values of the knobs give the seed's LAN scenario with matching credentials.
type site struct {
	pbxAddr, omlAddr string
	peerName         string // chan_sip section ("Trunk Name")
	wizardName       string // pjsip wizard section
	pbxSecret        string // chan_sip secret
	pbxUser          string // chan_sip defaultuser/fromuser
	omlInUser        string // inbound_auth/username
	omlInPass        string // inbound_auth/password
	omlOutUser       string // outbound_auth/username
	omlOutPass       string // outbound_auth/password
	peerPort         int    // chan_sip port= (OML transport port)
	noWizard         bool   // OML has no trunk at all
	qualifyFreq      int    // PBX [general] qualifyfreq (seconds), 0: stock
	omlQualifyFreq   int    // OML aor/qualify_frequency, 0: 60
	extraWizard      string // more wizard sections
	omlExtraDialplan string // appended to OML's managed dialplan
	profile          string
	instant          bool
	network          *Network
	logger           *slog.Logger
}

func (s *site) defaults() {
	if s.peerName == "" {
		s.peerName = "omnileads"
	}
	if s.wizardName == "" {
		s.wizardName = "issabel"
	}
	if s.pbxSecret == "" {
		s.pbxSecret = "S3cure-Trunk-Secret"
	}
	if s.omlInUser == "" {
		s.omlInUser = "issabel"
	}
	if s.pbxUser == "" {
		s.pbxUser = s.omlInUser
	}
	if s.omlInPass == "" {
		s.omlInPass = s.pbxSecret
	}
	if s.omlOutUser == "" {
		s.omlOutUser = s.peerName
	}
	if s.omlOutPass == "" {
		s.omlOutPass = s.pbxSecret
	}
	if s.peerPort == 0 {
		s.peerPort = 5161
	}
	if s.omlQualifyFreq == 0 {
		s.omlQualifyFreq = 60
	}
}

// appendInclude adds an #include line to a stock file, as the agent does.
func appendInclude(t testing.TB, dir, parent, child string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, parent), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fmt.Fprintf(f, "#include %s\n", child)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func writeFile(t testing.TB, dir, name, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
}

// writePBX writes the stock PBX files plus the managed ones of the brief.
func writePBX(t testing.TB, dir string, s site) {
	t.Helper()
	require.NoError(t, WriteStockFiles(dir, RolePBX, s.pbxAddr, ""))
	if s.qualifyFreq > 0 {
		writeFile(t, dir, "sip_general_custom.conf", fmt.Sprintf("qualifyfreq=%d\n", s.qualifyFreq))
	}
	writeFile(t, dir, "pbxfleet_sip.conf", fmt.Sprintf(`[%s]
type=friend
host=%s
port=%d
disallow=all
allow=alaw
qualify=yes
secret=%s
fromuser=%s
defaultuser=%s
context=from-internal
`, s.peerName, s.omlAddr, s.peerPort, s.pbxSecret, s.pbxUser, s.pbxUser))
	appendInclude(t, dir, "sip_custom.conf", "pbxfleet_sip.conf")
	writeFile(t, dir, "pbxfleet_extensions.conf", fmt.Sprintf(`[from-internal-custom]
exten => 5000,1,Dial(SIP/%[1]s/098098)
exten => _1XXXX.,1,Dial(SIP/%[1]s/${EXTEN})
exten => 99999,1,Hangup(1)
[pbxfleet-probe]
exten => _X.,1,Set(DB(pbxfleet/probe)=started)
 same => n,Dial(SIP/%[1]s/${EXTEN},5,g)
 same => n,Set(DB(pbxfleet/probe)=${DIALSTATUS}:${HANGUPCAUSE})
 same => n,Hangup()
`, s.peerName))
	appendInclude(t, dir, "extensions_custom.conf", "pbxfleet_extensions.conf")
}

// writeOML writes the stock OML files plus the managed ones of the brief.
func writeOML(t testing.TB, dir string, s site) {
	t.Helper()
	require.NoError(t, WriteStockFiles(dir, RoleOML, s.omlAddr, s.profile))
	wizard := ""
	if !s.noWizard {
		wizard = fmt.Sprintf(`[%s]
type=wizard
transport=trunk-transport
accepts_registrations=no
sends_auth=yes
sends_registrations=no
accepts_auth=yes
endpoint/rtp_symmetric=no
endpoint/force_rport=no
endpoint/rewrite_contact=no
endpoint/timers=yes
aor/qualify_frequency=%d
endpoint/allow=alaw,ulaw
endpoint/dtmf_mode=rfc4733
endpoint/context=from-pbx
remote_hosts=%s:5060
inbound_auth/username=%s
inbound_auth/password=%s
outbound_auth/username=%s
outbound_auth/password=%s
endpoint/from_user=%s
`, s.wizardName, s.omlQualifyFreq, s.pbxAddr, s.omlInUser, s.omlInPass, s.omlOutUser, s.omlOutPass, s.omlOutUser)
	}
	writeFile(t, dir, "pbxfleet_pjsip_wizard.conf", wizard+s.extraWizard)
	appendInclude(t, dir, "oml_pjsip_wizard_custom.conf", "pbxfleet_pjsip_wizard.conf")
	writeFile(t, dir, "pbxfleet_extensions.conf", fmt.Sprintf(`[from-pbx]
exten => 99999,1,Hangup(1)
[pbxfleet-probe]
exten => _X.,1,Set(DB(pbxfleet/probe)=started)
 same => n,Dial(PJSIP/${EXTEN}@%s,5,g)
 same => n,Set(DB(pbxfleet/probe)=${DIALSTATUS}:${HANGUPCAUSE})
 same => n,Hangup()
`, s.wizardName)+s.omlExtraDialplan)
	appendInclude(t, dir, "oml_extensions_custom.conf", "pbxfleet_extensions.conf")
}

// pair is a started PBX and OML lab host.
type pair struct {
	pbx, oml       *Host
	pbxDir, omlDir string
}

// startPair writes both sides' files and starts both hosts; Close is registered.
func startPair(t testing.TB, s site) *pair {
	t.Helper()
	p := startPairNoCleanup(t, s)
	t.Cleanup(func() {
		require.NoError(t, p.pbx.Close())
		require.NoError(t, p.oml.Close())
	})
	return p
}

// startPairNoCleanup is startPair for a caller that closes the hosts itself.
func startPairNoCleanup(t testing.TB, s site) *pair {
	t.Helper()
	s.defaults()
	p := &pair{pbxDir: t.TempDir(), omlDir: t.TempDir()}
	writePBX(t, p.pbxDir, s)
	writeOML(t, p.omlDir, s)
	var err error
	p.pbx, err = NewHost(Config{Role: RolePBX, Name: "test.pbx", ConfigDir: p.pbxDir, Address: s.pbxAddr,
		Instant: s.instant, Network: s.network, QualifyTimeout: time.Second, Logger: s.logger})
	require.NoError(t, err)
	p.oml, err = NewHost(Config{Role: RoleOML, Name: "test.oml", ConfigDir: p.omlDir, Address: s.omlAddr,
		Instant: s.instant, Network: s.network, QualifyTimeout: time.Second, Logger: s.logger})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, p.pbx.Start(ctx))
	require.NoError(t, p.oml.Start(ctx))
	return p
}

// rx runs a command and requires exit status 0.
func rx(t testing.TB, h *Host, cmd string) string {
	t.Helper()
	out, code, err := h.Run(context.Background(), cmd)
	require.NoError(t, err)
	require.Equal(t, 0, code, "exit status of %q: %s", cmd, out)
	return out
}

// waitFor polls cond until it holds or pollBound passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pollBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, pollBound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// qualified reloads both sides (states start over, as after an agent's apply),
// forces a qualify and waits until each reports a final state (anything but
// UNKNOWN/NonQual).
func qualified(t testing.TB, p *pair, peer, endpoint string) {
	t.Helper()
	rx(t, p.pbx, "sip reload")
	p.pbx.reloading.Wait() // chan_sip's reload lands after the command returns
	rx(t, p.oml, "module reload res_pjsip.so")
	rx(t, p.pbx, "sip qualify peer "+peer)
	waitFor(t, "PBX qualify", func() bool {
		out := rx(t, p.pbx, "sip show peers")
		return !strings.Contains(out, "UNKNOWN")
	})
	if endpoint == "" {
		return
	}
	rx(t, p.oml, "pjsip qualify "+endpoint)
	waitFor(t, "OML qualify", func() bool {
		out := rx(t, p.oml, "pjsip show endpoints")
		return !strings.Contains(out, "NonQual")
	})
}

// probe originates a probe call to number on h and returns DIALSTATUS:HANGUPCAUSE.
func probe(t testing.TB, h *Host, number string) string {
	t.Helper()
	rx(t, h, "database del pbxfleet probe")
	require.Empty(t, rx(t, h, "channel originate Local/"+number+"@pbxfleet-probe application Wait 1"))
	var v string
	waitFor(t, "probe outcome on "+h.Name(), func() bool {
		out := rx(t, h, "database get pbxfleet probe")
		v = strings.TrimSuffix(strings.TrimPrefix(out, "Value: "), "\n")
		return strings.HasPrefix(out, "Value: ") && v != "started"
	})
	return v
}

// freeUDP reports whether every address can be bound right now.
func freeUDP(addrs ...string) bool {
	var conns []*net.UDPConn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for _, a := range addrs {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(a)))
		if err != nil {
			return false
		}
		conns = append(conns, c)
	}
	return true
}
