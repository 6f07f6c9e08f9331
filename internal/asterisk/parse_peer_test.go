package asterisk

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func checkPeerDetail(t *testing.T, b []byte) {
	d, err := ParsePeer(b)
	require.NoError(t, err)
	fields := d.Fields
	d.Fields = nil
	assert.Equal(t, PeerDetail{
		Name: "omnileads", Secret: SecretSet, MD5Secret: SecretNotSet, Context: "from-internal",
		FromUser: "issabel", DefUsername: "issabel", ToHost: "127.0.0.3", Addr: "127.0.0.3:5161",
		Status: "OK (1 ms)", StatusKind: PeerStatusOK, LatencyMS: 1, HasLatency: true,
		QualifyFreqMS: 10000, Codecs: "(alaw)", DTMFMode: "rfc2833", ForceRport: "Auto (No)",
	}, d)
	assert.Equal(t, []string{"alaw"}, d.CodecList())
	// Every "Key : Value" line of the capture, including those with empty values.
	assert.Len(t, fields, 77)
	assert.Equal(t, "omnileads", fields["Name"])
	assert.Equal(t, `"" <>`, fields["Callerid"])
	assert.Equal(t, "", fields["Description"])
	assert.Equal(t, "<Not set>", fields["Remote Secret"])
	assert.Equal(t, "automon", fields["Record On feature"])
	assert.Equal(t, "UDP", fields["Prim.Transp."])
	assert.Equal(t, "1800 secs", fields["Sess-Expires"])
}

func TestParsePeer(t *testing.T) {
	base := string(readFixture(t, "pbx_sip_show_peer_omnileads_OK.txt"))
	tests := []struct {
		name   string
		in     string
		check  func(t *testing.T, d PeerDetail)
		status PeerStatus
	}{
		{
			name:   "unreachable",
			in:     strings.Replace(base, "Status       : OK (1 ms)", "Status       : UNREACHABLE", 1),
			status: PeerStatusUnreachable,
			check: func(t *testing.T, d PeerDetail) {
				assert.False(t, d.HasLatency)
				assert.Equal(t, 0, d.LatencyMS)
			},
		},
		{
			name:   "lagged",
			in:     strings.Replace(base, "Status       : OK (1 ms)", "Status       : LAGGED (2500 ms)", 1),
			status: PeerStatusLagged,
			check: func(t *testing.T, d PeerDetail) {
				assert.Equal(t, 2500, d.LatencyMS)
			},
		},
		{
			name:   "unknown, two codecs, dynamic",
			in:     strings.NewReplacer("Status       : OK (1 ms)", "Status       : UNKNOWN", "Codecs       : (alaw)", "Codecs       : (alaw|ulaw)", "Dynamic      : No", "Dynamic      : Yes").Replace(base),
			status: PeerStatusUnknown,
			check: func(t *testing.T, d PeerDetail) {
				assert.Equal(t, []string{"alaw", "ulaw"}, d.CodecList())
				assert.True(t, d.Dynamic)
				assert.True(t, d.StatusKind.Pending())
			},
		},
		{
			name:   "log lines and CRLF",
			in:     strings.ReplaceAll("[Nov 23 20:34:32] NOTICE[3313]: chan_sip.c:1 x: y\n"+base+"    -- Executing [s@x:1] NoOp()\n", "\n", "\r\n"),
			status: PeerStatusOK,
			check: func(t *testing.T, d PeerDetail) {
				assert.Equal(t, "from-internal", d.Context)
				assert.Equal(t, "127.0.0.3:5161", d.Addr)
				assert.Len(t, d.Fields, 77)
			},
		},
		{
			name:   "variables block",
			in:     strings.Replace(base, "  Parkinglot   : \n", "  Variables    :\n                 FOO = bar\n  Parkinglot   : \n", 1),
			status: PeerStatusOK,
			check: func(t *testing.T, d PeerDetail) {
				assert.Equal(t, "", d.Fields["Variables"])
				assert.Len(t, d.Fields, 78)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParsePeer([]byte(tt.in))
			require.NoError(t, err)
			assert.Equal(t, "omnileads", d.Name)
			assert.Equal(t, tt.status, d.StatusKind)
			tt.check(t, d)
		})
	}
}

func TestParsePeerErrors(t *testing.T) {
	base := string(readFixture(t, "pbx_sip_show_peer_omnileads_OK.txt"))
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"not found", "Peer nosuchpeer not found.\n\n", ErrNotFound},
		{"not found with CRLF", "Peer nosuchpeer not found.\r\n", ErrNotFound},
		{"empty", "", ErrUnexpectedOutput},
		{"garbage", "\x00\x01 ::: \n:\n", ErrUnexpectedOutput},
		{"no name line", strings.Replace(base, "  * Name       : omnileads\n", "", 1), ErrUnexpectedOutput},
		{"unknown status", strings.Replace(base, "OK (1 ms)", "FINE", 1), ErrUnexpectedOutput},
		{"bad qualify frequency", strings.Replace(base, "10000 ms", "often", 1), ErrUnexpectedOutput},
		{"chan_sip not loaded", "No such command 'sip show peer omnileads' (type 'core show help sip show peer' for other possible commands)\n", ErrNoSuchCommand},
		{"not running", "Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)\n", ErrNotRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePeer([]byte(tt.in))
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

func TestPeerDetailCodecList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"(alaw)", []string{"alaw"}},
		{"(alaw|ulaw|g729)", []string{"alaw", "ulaw", "g729"}},
		{"(nothing)", nil},
		{"", nil},
		{"0x8 (alaw|ulaw)", []string{"alaw", "ulaw"}}, // Asterisk 1.8
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, PeerDetail{Codecs: tt.in}.CodecList())
		})
	}
}
