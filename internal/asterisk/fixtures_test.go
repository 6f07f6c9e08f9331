package asterisk

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/testfixtures"
)

// readFixture returns the bytes of one real Asterisk capture, unmodified.
func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	return testfixtures.Read(tb, name)
}

// fixtureNames lists every capture, sorted.
func fixtureNames(tb testing.TB) []string {
	tb.Helper()
	return testfixtures.Names(tb)
}

// rxRun is one command of the rx_exit_codes.txt transcript.
type rxRun struct {
	cmd  string
	out  []byte
	exit int
}

// splitTranscript splits rx_exit_codes.txt into its runs: a "$ <command>" line,
// the output, then the "exit code: N" line the capture added.
func splitTranscript(tb testing.TB, b []byte) []rxRun {
	tb.Helper()
	var (
		runs []rxRun
		cur  *rxRun
	)
	for _, l := range strings.SplitAfter(string(b), "\n") {
		switch t := strings.TrimRight(l, "\r\n"); {
		case strings.HasPrefix(t, "$ "):
			runs = append(runs, rxRun{cmd: t})
			cur = &runs[len(runs)-1]
		case cur == nil:
		case strings.HasPrefix(t, "exit code: "):
			n, err := strconv.Atoi(strings.TrimPrefix(t, "exit code: "))
			require.NoError(tb, err)
			cur.exit = n
			cur = nil
		default:
			cur.out = append(cur.out, l...)
		}
	}
	return runs
}

// fixtureChecks says, for every file of the fixture directory, which parser reads
// it and what it must return. TestEveryFixtureIsChecked fails when a file is added
// to the directory without an entry here.
var fixtureChecks = map[string]func(t *testing.T, b []byte){
	"probe_call_matrix.md":                           checkNotCLIOutput,
	"pbx_sip_show_peers_OK.txt":                      checkPeersOK,
	"pbx_sip_show_peers_UNREACHABLE_oml_stopped.txt": checkPeersUnreachable,
	"pbx_sip_show_peer_omnileads_OK.txt":             checkPeerDetail,
	"pbx_sip_reload.txt": func(t *testing.T, b []byte) {
		assert.Empty(t, b)
		assert.NoError(t, ParseReload("sip reload", b))
		assert.ErrorIs(t, ParseReload("dialplan reload", b), ErrReloadFailed)
	},
	"pbx_dialplan_reload.txt": func(t *testing.T, b []byte) {
		assert.NoError(t, ParseReload("dialplan reload", b))
		assert.NoError(t, ParseReload("  dialplan   reload ", b))
		assert.ErrorIs(t, ParseReload("sip reload", b), ErrReloadFailed)
	},
	"oml_module_reload_res_pjsip.txt": func(t *testing.T, b []byte) {
		assert.NoError(t, ParseReload("module reload res_pjsip.so", b))
		assert.ErrorIs(t, ParseReload("module reload res_pjsip_session.so", b), ErrReloadFailed)
		assert.ErrorIs(t, ParseReload("pjsip reload", b), ErrReloadFailed)
	},
	"oml_pjsip_reload_NO_SUCH_COMMAND.txt": func(t *testing.T, b []byte) {
		assert.True(t, IsNoSuchCommand(b))
		assert.ErrorIs(t, ParseReload("pjsip reload", b), ErrNoSuchCommand)
		_, err := ParseEndpoints(b)
		assert.ErrorIs(t, err, ErrNoSuchCommand)
	},
	"pbx_rx_when_not_running.txt": checkNotRunning,
	"oml_rx_when_not_running.txt": checkNotRunning,
	"pbx_core_show_version.txt":   checkVersion,
	"oml_core_show_version.txt":   checkVersion,
	"oml_pjsip_show_endpoints_Avail.txt": func(t *testing.T, b []byte) {
		eps, err := ParseEndpoints(b)
		require.NoError(t, err)
		assert.Equal(t, []Endpoint{issabelEndpoint("Not in use", ContactAvail, 0.395, true)}, eps)
		assert.True(t, eps[0].Reachable())
		assert.False(t, eps[0].Pending())
	},
	"oml_pjsip_show_endpoints_Unavail_pbx_stopped.txt": func(t *testing.T, b []byte) {
		eps, err := ParseEndpoints(b)
		require.NoError(t, err)
		nat := Endpoint{
			Name: "issabel-nat", State: "Unavailable", Channels: "0", MaxChannels: "inf",
			OutAuth:    []AuthRef{{ID: "issabel-nat-oauth", User: "omnileads"}},
			InAuth:     []AuthRef{{ID: "issabel-nat-iauth", User: "issabel-nat"}},
			AORs:       []string{"issabel-nat"},
			Contacts:   []Contact{{AOR: "issabel-nat", URI: "sip:127.0.0.9:5060", Hash: "739c44ada0", Status: ContactUnavail}},
			Transports: []TransportRef{{ID: "trunk-nat-transport", Type: "udp", Bind: "127.0.0.3:5162"}},
			Identifies: []string{"issabel-nat-identify"},
			Matches:    []string{"127.0.0.9:5060/32"},
		}
		assert.Equal(t, []Endpoint{issabelEndpoint("Unavailable", ContactUnavail, 0, false), nat}, eps)
		for _, e := range eps {
			assert.False(t, e.Reachable(), e.Name)
			assert.False(t, e.Pending(), e.Name)
		}
	},
	"oml_pjsip_show_endpoints_NO_WIZARD.txt": func(t *testing.T, b []byte) {
		eps, err := ParseEndpoints(b)
		require.NoError(t, err)
		assert.NotNil(t, eps)
		assert.Empty(t, eps)
	},
	"oml_pjsip_show_endpoint_issabel.txt": checkEndpointDetail,
	"rx_exit_codes.txt":                   checkTranscript,
	"pbx_log_call_098098_BAD_SECRET.txt": func(t *testing.T, b []byte) {
		checkLogStripped(t, b, 57)
	},
	"oml_log_call_098098_BAD_SECRET.txt": func(t *testing.T, b []byte) {
		checkLogStripped(t, b, 21)
	},
}

func TestEveryFixtureIsChecked(t *testing.T) {
	names := fixtureNames(t)
	require.NotEmpty(t, names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			check, ok := fixtureChecks[name]
			require.True(t, ok, "fixture %s has no entry in fixtureChecks", name)
			check(t, readFixture(t, name))
		})
	}
	for name := range fixtureChecks {
		assert.Contains(t, names, name, "fixtureChecks names a file that is gone")
	}
}

// issabelEndpoint is the [issabel] wizard endpoint of the OML captures.
func issabelEndpoint(state string, st ContactStatus, rtt float64, hasRTT bool) Endpoint {
	return Endpoint{
		Name: "issabel", State: state, Channels: "0", MaxChannels: "inf",
		OutAuth:    []AuthRef{{ID: "issabel-oauth", User: "omnileads"}},
		InAuth:     []AuthRef{{ID: "issabel-iauth", User: "issabel"}},
		AORs:       []string{"issabel"},
		Contacts:   []Contact{{AOR: "issabel", URI: "sip:127.0.0.2:5060", Hash: "067c650437", Status: st, RTTMS: rtt, HasRTT: hasRTT}},
		Transports: []TransportRef{{ID: "trunk-transport", Type: "udp", Bind: "127.0.0.3:5161"}},
		Identifies: []string{"issabel-identify"},
		Matches:    []string{"127.0.0.2:5060/32"},
	}
}

// checkNotCLIOutput asserts that no parser takes a documentation file for CLI output.
func checkNotCLIOutput(t *testing.T, b []byte) {
	_, err := ParsePeers(b)
	assert.ErrorIs(t, err, ErrUnexpectedOutput, "ParsePeers")
	_, err = ParsePeer(b)
	assert.ErrorIs(t, err, ErrUnexpectedOutput, "ParsePeer")
	_, err = ParseEndpoints(b)
	assert.ErrorIs(t, err, ErrUnexpectedOutput, "ParseEndpoints")
	_, err = ParseEndpoint(b)
	assert.ErrorIs(t, err, ErrUnexpectedOutput, "ParseEndpoint")
	_, err = ParseDialplanShow(b)
	assert.ErrorIs(t, err, ErrUnexpectedOutput, "ParseDialplanShow")
	_, err = ParseDatabaseGet(b)
	assert.ErrorIs(t, err, ErrUnexpectedOutput, "ParseDatabaseGet")
	_, err = ParseCoreVersion(b)
	assert.ErrorIs(t, err, ErrUnexpectedOutput, "ParseCoreVersion")
	assert.ErrorIs(t, ParseReload("sip reload", b), ErrReloadFailed)
	assert.False(t, IsNoSuchCommand(b))
	assert.False(t, IsNotRunning(b, 1))
}

func checkNotRunning(t *testing.T, b []byte) {
	assert.True(t, IsNotRunning(b, 1))
	assert.False(t, IsNotRunning(b, 0), "exit status 0 is never 'not running'")
	assert.False(t, IsNoSuchCommand(b))
	_, err := ParsePeers(b)
	assert.ErrorIs(t, err, ErrNotRunning)
	_, err = ParseEndpoints(b)
	assert.ErrorIs(t, err, ErrNotRunning)
	assert.ErrorIs(t, ParseReload("sip reload", b), ErrNotRunning)
	_, err = ParseDatabaseGet(b)
	assert.ErrorIs(t, err, ErrNotRunning)
}

func checkVersion(t *testing.T, b []byte) {
	v, err := ParseCoreVersion(b)
	require.NoError(t, err)
	assert.Equal(t, "20.20.1", v)
}

// checkTranscript runs each command of rx_exit_codes.txt through the parser an
// agent would use for it.
func checkTranscript(t *testing.T, b []byte) {
	runs := splitTranscript(t, b)
	require.Len(t, runs, 5)
	for _, r := range runs {
		switch {
		case strings.Contains(r.cmd, "'sip show peer nosuchpeer'"):
			assert.Equal(t, 0, r.exit)
			_, err := ParsePeer(r.out)
			assert.ErrorIs(t, err, ErrNotFound)
			assert.ErrorContains(t, err, `"nosuchpeer"`)
		case strings.Contains(r.cmd, "'pjsip reload'"):
			assert.Equal(t, 0, r.exit)
			assert.True(t, IsNoSuchCommand(r.out))
			assert.ErrorIs(t, ParseReload("pjsip reload", r.out), ErrNoSuchCommand)
		case strings.Contains(r.cmd, "'dialplan show nonexist'"):
			assert.Equal(t, 0, r.exit)
			_, err := ParseDialplanShow(r.out)
			assert.ErrorIs(t, err, ErrNotFound)
		case strings.Contains(r.cmd, "'core show version'"):
			assert.Equal(t, 1, r.exit)
			assert.True(t, IsNotRunning(r.out, r.exit))
			_, err := ParseCoreVersion(r.out)
			assert.ErrorIs(t, err, ErrNotRunning)
		default:
			t.Errorf("transcript command without a check: %s", r.cmd)
		}
		assert.False(t, IsNotRunning(r.out, r.exit) && r.exit == 0)
	}
}

// checkLogStripped asserts that StripLogLines drops exactly the log lines of a log
// excerpt and keeps every other line (the SIP packets they announce) byte for byte.
func checkLogStripped(t *testing.T, b []byte, logLines int) {
	got := StripLogLines(b)
	in := strings.SplitAfter(string(b), "\n")
	kept := strings.SplitAfter(string(got), "\n")
	assert.Equal(t, len(in)-logLines, len(kept))
	var want strings.Builder
	for _, l := range in {
		if !strings.HasPrefix(l, "[2026-11-23 ") {
			want.WriteString(l)
		}
	}
	assert.Equal(t, want.String(), string(got))
	assert.Contains(t, string(got), "SIP/2.0 401 Unauthorized")
	assert.NotContains(t, string(got), "NOTICE[")
	assert.NotContains(t, string(got), "VERBOSE[")
}
