package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/testfixtures"
)

// readCapture returns a real Asterisk 20.20.1 capture from internal/testfixtures, unmodified.
func readCapture(t *testing.T, name string) string {
	t.Helper()
	return string(testfixtures.Read(t, name))
}

func TestParsePeers(t *testing.T) {
	r := run(t, readCapture(t, "pbx_sip_show_peers_OK.txt"), "parse", "peers")
	require.NoError(t, r.Err, r.Stderr)
	var doc peersJSON
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&doc))
	require.Equal(t, 1, doc.Count)
	p := doc.Peers[0]
	assert.Equal(t, "omnileads", p.Name)
	assert.Equal(t, "issabel", p.User)
	assert.Equal(t, "127.0.0.3", p.Host)
	assert.Equal(t, 5161, p.Port)
	assert.Equal(t, "OK", p.Status)
	require.NotNil(t, p.LatencyMS)
	assert.Equal(t, 1, *p.LatencyMS)
	assert.True(t, p.Reachable)
	assert.False(t, p.Pending)
}

func TestParseEndpoints(t *testing.T) {
	r := run(t, readCapture(t, "oml_pjsip_show_endpoints_Avail.txt"), "parse", "endpoints")
	require.NoError(t, r.Err, r.Stderr)
	var doc endpointsJSON
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&doc))
	require.Equal(t, 1, doc.Count)
	e := doc.Endpoints[0]
	assert.Equal(t, "issabel", e.Name)
	assert.Equal(t, "Not in use", e.State)
	assert.Equal(t, []authJSON{{ID: "issabel-oauth", User: "omnileads"}}, e.OutAuth)
	assert.Equal(t, []authJSON{{ID: "issabel-iauth", User: "issabel"}}, e.InAuth)
	require.Len(t, e.Contacts, 1)
	assert.Equal(t, "Avail", e.Contacts[0].Status)
	assert.Equal(t, "sip:127.0.0.2:5060", e.Contacts[0].URI)
	require.NotNil(t, e.Contacts[0].RTTMS)
	assert.InDelta(t, 0.395, *e.Contacts[0].RTTMS, 1e-9)
	assert.Equal(t, []transportJSON{{ID: "trunk-transport", Type: "udp", Bind: "127.0.0.3:5161"}}, e.Transports)
	assert.Equal(t, []string{"127.0.0.2:5060/32"}, e.Matches)
	assert.True(t, e.Reachable)
	assert.Equal(t, []channelJSON{}, e.Calls)
}

func TestParseNoEndpoints(t *testing.T) {
	r := run(t, "No objects found.\n", "parse", "endpoints")
	require.NoError(t, r.Err)
	assert.JSONEq(t, `{"count": 0, "endpoints": []}`, r.Stdout)
}

func TestParseRejectsWhatItCannotRead(t *testing.T) {
	tests := []struct {
		name, verb, stdin, contains string
	}{
		{"peers: asterisk not running", "peers", "Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)\n", "not running"},
		{"peers: chan_sip not loaded", "peers", "No such command 'sip show peers' (type 'core show help sip show' for other possible commands)\n", "no such command"},
		{"peers: garbage", "peers", "hello\n", "unexpected asterisk output"},
		{"endpoints: the peers table", "endpoints", readCapture(t, "pbx_sip_show_peers_OK.txt"), "unexpected asterisk output"},
		{"endpoints: empty", "endpoints", "", "unexpected asterisk output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.stdin, "parse", tt.verb)
			assert.Equal(t, 2, r.Code())
			assert.Empty(t, r.Stdout)
			require.Error(t, r.Err)
			assert.Contains(t, r.Err.Error(), tt.contains)
		})
	}
}

func TestParseHelpTeaches(t *testing.T) {
	r := run(t, "", "parse", "--help")
	require.NoError(t, r.Err)
	assert.Contains(t, r.Stdout, "asterisk -rx 'sip show peers' | pbxfleet parse peers")
	assert.Contains(t, r.Stdout, "does not prove the trunk can carry a call")
}
