package asterisk

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestStripLogLines(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", ""},
		{"console NOTICE", "a\n[Nov 23 20:34:32] NOTICE[3313]: chan_sip.c:16545 handle_response_peerpoke: Peer 'omnileads' is now Reachable.\nb\n", "a\nb\n"},
		{"log file NOTICE with call id", "[2026-11-23 20:34:32] NOTICE[3313][C-00000003] chan_sip.c: Failed to authenticate on INVITE\nkept\n", "kept\n"},
		{"console WARNING with call id", "[2026-11-23 20:34:32] WARNING[123][C-0000000a]: app_dial.c:1 x: y\nkept\n", "kept\n"},
		{"ERROR, DEBUG, VERBOSE, SECURITY", "[Nov 23 20:34:32] ERROR[1]: a\n[Nov 23 20:34:32] DEBUG[2]: b\n[Nov 23 20:34:32] VERBOSE[3] c\n[Nov 23 20:34:32] SECURITY[4] d\nkept", "kept"},
		{"verbose prefixes", "  == Using SIP RTP CoS mark 5\n    -- Executing [5000@from-internal:1] Dial()\n       > Channel SIP/x answered\nkept\n", "kept\n"},
		{"timestamped verbose", "[Nov 23 20:34:32]     -- Executing [s@x:1] NoOp()\nkept\n", "kept\n"},
		{"coloured level", "[Nov 23 20:34:32] \x1b[1;33mNOTICE\x1b[0m[3313]: chan_sip.c:1 f: m\nkept\n", "kept\n"},
		{"CRLF kept on kept lines", "a\r\n[Nov 23 20:34:32] NOTICE[1]: x\r\nb\r\n", "a\r\nb\r\n"},
		{"last line without newline", "a\n[Nov 23 20:34:32] NOTICE[1]: x", "a\n"},
		{
			name: "real output that looks a bit like logs is kept",
			in: "[ Context 'from-internal-custom' created by 'pbx_config' ]\n" +
				" ==========================================================================================\n" +
				"==========================================================================================\n" +
				"  * Name       : omnileads\n" +
				"  -- two-space dashes\n" +
				"   == three-space equals\n" +
				"[Nov 23 20:34:32] NOTICE without thread id\n" +
				"Peer says NOTICE[1]: not at the start\n" +
				"-= 2 extensions (3 priorities) in 1 context. =-\n",
			want: "[ Context 'from-internal-custom' created by 'pbx_config' ]\n" +
				" ==========================================================================================\n" +
				"==========================================================================================\n" +
				"  * Name       : omnileads\n" +
				"  -- two-space dashes\n" +
				"   == three-space equals\n" +
				"[Nov 23 20:34:32] NOTICE without thread id\n" +
				"Peer says NOTICE[1]: not at the start\n" +
				"-= 2 extensions (3 priorities) in 1 context. =-\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StripLogLines([]byte(tt.in))
			assert.NotNil(t, got)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func TestStripLogLinesKeepsFixturesWithoutLogs(t *testing.T) {
	// The CLI captures hold no log lines: stripping must not change a byte.
	for _, name := range fixtureNames(t) {
		if strings.Contains(name, "_log_") {
			continue // the log excerpts, checked by checkLogStripped
		}
		t.Run(name, func(t *testing.T) {
			b := readFixture(t, name)
			assert.Equal(t, string(b), string(StripLogLines(b)))
		})
	}
}

func TestStripLogLinesDoesNotAlias(t *testing.T) {
	in := []byte("a\nb\n")
	got := StripLogLines(in)
	got[0] = 'x'
	assert.Equal(t, "a\nb\n", string(in))
}
