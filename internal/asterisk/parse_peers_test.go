package asterisk

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The row formats of chan_sip's `sip show peers`, so synthetic cases are built the
// way Asterisk builds its output. TestPeersFormatMatchesCapture proves format20
// against the real capture.
const (
	// format20 is Asterisk 11.8+ (Comedia column), 20.x included.
	format20 = "%-25.25s %-39.39s %-3.3s %-10.10s %-10.10s %-3.3s %-8s %-11s %-32.32s %s\n"
	// format117 is Asterisk 10 to 11.7: no Comedia column.
	format117 = "%-25.25s %-39.39s %-3.3s %-10.10s %-3.3s %-8s %-11s %-32.32s %s\n"
	// format18 is Asterisk 1.8: 15-wide host, Nat column, no Description.
	format18 = "%-25.25s  %-15.15s %-3.3s %-3.3s %-3.3s %-8s %-10s %s\n"
)

var (
	header20  = fmt.Sprintf(format20, "Name/username", "Host", "Dyn", "Forcerport", "Comedia", "ACL", "Port", "Status", "Description", "")
	header117 = fmt.Sprintf(format117, "Name/username", "Host", "Dyn", "Forcerport", "ACL", "Port", "Status", "Description", "")
	header18  = fmt.Sprintf(format18, "Name/username", "Host", "Dyn", "Nat", "ACL", "Port", "Status", "")
)

// row20 formats one 20.x row: name, host, dyn, forcerport, comedia, acl, port,
// status, description, realtime.
func row20(cells ...any) string { return fmt.Sprintf(format20, cells...) }

func peersSummary(total, monOn, monOff, unOn, unOff int) string {
	return fmt.Sprintf("%d sip peers [Monitored: %d online, %d offline Unmonitored: %d online, %d offline]\n",
		total, monOn, monOff, unOn, unOff)
}

func TestPeersFormatMatchesCapture(t *testing.T) {
	want := header20 + row20("omnileads/issabel", "127.0.0.3", "   ", "Auto (No)", "No", "   ", "5161", "OK (1 ms)", "", "") +
		peersSummary(1, 1, 0, 0, 0)
	assert.Equal(t, want, string(readFixture(t, "pbx_sip_show_peers_OK.txt")))
}

func checkPeersOK(t *testing.T, b []byte) {
	peers, err := ParsePeers(b)
	require.NoError(t, err)
	want := []Peer{{Name: "omnileads", User: "issabel", Host: "127.0.0.3", Port: 5161,
		Status: PeerStatusOK, LatencyMS: 1, HasLatency: true}}
	assert.Equal(t, want, peers)
	assert.True(t, peers[0].Reachable())
	p, ok := FindPeer(peers, "omnileads")
	assert.True(t, ok)
	assert.Equal(t, want[0], p)
	_, ok = FindPeer(peers, "issabel")
	assert.False(t, ok, "the defaultuser is not the peer name")
}

func checkPeersUnreachable(t *testing.T, b []byte) {
	peers, err := ParsePeers(b)
	require.NoError(t, err)
	assert.Equal(t, []Peer{{Name: "omnileads", User: "issabel", Host: "127.0.0.3", Port: 5161,
		Status: PeerStatusUnreachable}}, peers)
	assert.False(t, peers[0].Reachable())
	assert.False(t, peers[0].Status.Pending(), "UNREACHABLE is down, not pending")
}

func TestParsePeers(t *testing.T) {
	notice := "[Nov 23 20:34:32] NOTICE[3313]: chan_sip.c:16545 handle_response_peerpoke: Peer 'omnileads' is now Reachable. (1ms / 2000ms)\n"
	warning := "[2026-11-23 20:34:32] WARNING[3313][C-00000003] chan_sip.c: Received response: \"Forbidden\" from '127.0.0.3:5161'\n"
	okRow := row20("omnileads/issabel", "127.0.0.3", "   ", "Auto (No)", "No", "   ", "5161", "OK (1 ms)", "", "")
	okPeer := Peer{Name: "omnileads", User: "issabel", Host: "127.0.0.3", Port: 5161, Status: PeerStatusOK, LatencyMS: 1, HasLatency: true}

	tests := []struct {
		name string
		in   string
		want []Peer
	}{
		{
			name: "LAGGED with a description shifts the columns after Port",
			in: header20 +
				row20("omnileads/issabel", "10.0.0.5", "   ", "Yes", "Auto (Yes)", "   ", "5161", "LAGGED (2500 ms)", "OML site 7 trunk", "") +
				peersSummary(1, 1, 0, 0, 0),
			want: []Peer{{Name: "omnileads", User: "issabel", Host: "10.0.0.5", Port: 5161, Status: PeerStatusLagged,
				LatencyMS: 2500, HasLatency: true, Description: "OML site 7 trunk"}},
		},
		{
			name: "UNKNOWN, Unmonitored, dynamic, ACL and no address",
			in: header20 +
				row20("100", "(Unspecified)", " D ", "No", "No", " A ", "0", "UNKNOWN", "", "") +
				row20("200/200", "192.168.1.20", " D ", "Yes", "Yes", "   ", "5060", "Unmonitored", "Reception", "") +
				row20("omnileads/issabel", "127.0.0.3", "   ", "Auto (No)", "No", "   ", "5161", "UNREACHABLE", "", "") +
				peersSummary(3, 0, 2, 1, 0),
			want: []Peer{
				{Name: "100", Host: "(Unspecified)", Port: 0, Dynamic: true, Status: PeerStatusUnknown},
				{Name: "200", User: "200", Host: "192.168.1.20", Port: 5060, Dynamic: true, Status: PeerStatusUnmonitored, Description: "Reception"},
				{Name: "omnileads", User: "issabel", Host: "127.0.0.3", Port: 5161, Status: PeerStatusUnreachable},
			},
		},
		{
			name: "Asterisk 11.7 header without Comedia",
			in: header117 +
				fmt.Sprintf(format117, "omnileads/issabel", "192.168.0.10", "   ", " N ", "   ", "5161", "OK (12 ms)", "trunk", "") +
				fmt.Sprintf(format117, "101", "(Unspecified)", " D ", "   ", " A ", "0", "UNKNOWN", "", "") +
				peersSummary(2, 1, 1, 0, 0),
			want: []Peer{
				{Name: "omnileads", User: "issabel", Host: "192.168.0.10", Port: 5161, Status: PeerStatusOK, LatencyMS: 12, HasLatency: true, Description: "trunk"},
				{Name: "101", Host: "(Unspecified)", Dynamic: true, Status: PeerStatusUnknown},
			},
		},
		{
			name: "Asterisk 1.8 header without Description",
			in: header18 +
				fmt.Sprintf(format18, "omnileads/issabel", "192.168.0.10", "   ", " N ", "   ", "5161", "OK (3 ms)", "") +
				fmt.Sprintf(format18, "102", "192.168.0.33", " D ", "   ", "   ", "5060", "Unmonitored", "") +
				peersSummary(2, 1, 0, 1, 0),
			want: []Peer{
				{Name: "omnileads", User: "issabel", Host: "192.168.0.10", Port: 5161, Status: PeerStatusOK, LatencyMS: 3, HasLatency: true},
				{Name: "102", Host: "192.168.0.33", Port: 5060, Dynamic: true, Status: PeerStatusUnmonitored},
			},
		},
		{
			name: "name cut at 25 characters",
			in: header20 +
				row20("averyveryverylongpeername1/someuser", "10.1.1.1", "   ", "No", "No", "   ", "5060", "OK (4 ms)", "", "") +
				row20("trunk_site_0042/defaultuser42", "10.1.1.2", "   ", "No", "No", "   ", "5060", "Unmonitored", "", "") +
				peersSummary(2, 1, 0, 1, 0),
			want: []Peer{
				{Name: "averyveryverylongpeername", Host: "10.1.1.1", Port: 5060, Status: PeerStatusOK, LatencyMS: 4, HasLatency: true, Truncated: true},
				{Name: "trunk_site_0042", User: "defaultus", Host: "10.1.1.2", Port: 5060, Status: PeerStatusUnmonitored, Truncated: true},
			},
		},
		{
			name: "log lines interleaved",
			in:   notice + header20 + warning + okRow + notice + "  == Using SIP RTP CoS mark 5\n" + peersSummary(1, 1, 0, 0, 0) + warning,
			want: []Peer{okPeer},
		},
		{
			name: "CRLF line endings",
			in:   strings.ReplaceAll(header20+okRow+peersSummary(1, 1, 0, 0, 0), "\n", "\r\n"),
			want: []Peer{okPeer},
		},
		{
			name: "no summary line",
			in:   header20 + okRow,
			want: []Peer{okPeer},
		},
		{
			name: "realtime peer held in memory",
			in: strings.Replace(header20, "Description                      \n", "Description                      Realtime\n", 1) +
				row20("omnileads/issabel", "127.0.0.3", "   ", "Auto (No)", "No", "   ", "5161", "OK (1 ms)", "", "Cached RT") +
				peersSummary(1, 1, 0, 0, 0),
			want: []Peer{okPeer},
		},
		{
			name: "no peers",
			in:   header20 + peersSummary(0, 0, 0, 0, 0),
			want: []Peer{},
		},
		{
			name: "master config note before the output",
			in:   "Unable to open specified master config file '/etc/asterisk/asterisk.conf', using built-in defaults\n" + header20 + okRow,
			want: []Peer{okPeer},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePeers([]byte(tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParsePeersErrors(t *testing.T) {
	okRow := row20("omnileads/issabel", "127.0.0.3", "   ", "Auto (No)", "No", "   ", "5161", "OK (1 ms)", "", "")
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrUnexpectedOutput},
		{"garbage", "hello world\n\x00\xff\n", ErrUnexpectedOutput},
		{"rows without a header", okRow, ErrUnexpectedOutput},
		{"two headers", header20 + header20 + okRow, ErrUnexpectedOutput},
		{"summary count disagrees", header20 + okRow + peersSummary(2, 2, 0, 0, 0), ErrUnexpectedOutput},
		{"summary online disagrees", header20 + okRow + peersSummary(1, 0, 1, 0, 0), ErrUnexpectedOutput},
		{"row after the summary", header20 + peersSummary(0, 0, 0, 0, 0) + okRow, ErrUnexpectedOutput},
		{"row without a status", header20 + "omnileads/issabel 127.0.0.3 5161 FINE\n", ErrUnexpectedOutput},
		{"row without a port", header20 + "omnileads/issabel 127.0.0.3 OK (1 ms)\n", ErrUnexpectedOutput},
		{"truncated row", header20 + "omnileads/issabel         127.0.0.3      \n", ErrUnexpectedOutput},
		// Found by FuzzParsePeers: a "/" cell gave a peer without a name.
		{"row with an empty name", header20 + "/ 0 0 UNREACHABLE\n", ErrUnexpectedOutput},
		{"header word run on", "Name/username0\n/ 0 0 UNREACHABLE", ErrUnexpectedOutput},
		{"chan_sip not loaded", "No such command 'sip show peers' (type 'core show help sip show' for other possible commands)\n", ErrNoSuchCommand},
		{"not running", "Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)\n", ErrNotRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePeers([]byte(tt.in))
			assert.ErrorIs(t, err, tt.want)
			assert.Nil(t, got)
		})
	}
}

func TestPeerStatusPredicates(t *testing.T) {
	tests := []struct {
		s                            PeerStatus
		answered, reachable, pending bool
	}{
		{PeerStatusOK, true, true, false},
		// LAGGED answered, but chan_sip refuses calls to it (cause 20).
		{PeerStatusLagged, true, false, false},
		{PeerStatusUnreachable, false, false, false},
		{PeerStatusUnknown, false, false, true},
		{PeerStatusUnmonitored, false, false, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.s), func(t *testing.T) {
			assert.Equal(t, tt.answered, tt.s.Answered())
			assert.Equal(t, tt.reachable, tt.s.Reachable())
			assert.Equal(t, tt.reachable, Peer{Status: tt.s}.Reachable())
			assert.Equal(t, tt.pending, tt.s.Pending())
		})
	}
}

func TestFindPeer(t *testing.T) {
	peers := []Peer{
		{Name: "omnileads", User: "issabel"},
		{Name: "averyveryverylongpeername", Truncated: true},
		{Name: "cut_twice_xxxxxxxxxxxxxxx", Truncated: true},
		{Name: "cut_twice_xxxxxxxxxxxxxxx", Truncated: true},
	}
	tests := []struct {
		name   string
		want   string
		wantOK bool
	}{
		{"omnileads", "omnileads", true},
		{"omni", "", false},
		{"averyveryverylongpeername1", "averyveryverylongpeername", true},
		{"averyveryverylongpeername", "averyveryverylongpeername", true},
		{"cut_twice_xxxxxxxxxxxxxxx_1", "", false},
		{"missing", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := FindPeer(peers, tt.name)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, p.Name)
		})
	}
}
