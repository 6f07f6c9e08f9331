package asterisk

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const notRunningOut = "Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)\n"

func TestIsNotRunning(t *testing.T) {
	tests := []struct {
		name string
		out  string
		exit int
		want bool
	}{
		{"stopped", notRunningOut, 1, true},
		{"stopped, capture's exit line", notRunningOut + "exit code: 1\n", 1, true},
		{"stopped behind a wrapper exit code", notRunningOut, 255, true},
		{"text but exit 0", notRunningOut, 0, false},
		{"exit 1 without the text", "Error response from daemon: No such container: oml-asterisk-prodenv\n", 1, false},
		{"no such command", "No such command 'x' (type 'core show help x' for other possible commands)\n", 0, false},
		{"empty", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, IsNotRunning([]byte(tt.out), tt.exit))
		})
	}
}

func TestIsNoSuchCommand(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want bool
	}{
		{"pjsip reload", "No such command 'pjsip reload' (type 'core show help pjsip reload' for other possible commands)\n", true},
		{"after a log line, CRLF", "[Nov 23 20:34:32] WARNING[1]: a.c:1 b: c\r\nNo such command 'sip show peers' (type 'core show help sip show' for other possible commands)\r\n", true},
		{"empty", "", false},
		{"reload text", "Module 'res_pjsip.so' reloaded successfully.\n", false},
		{"quoted inside a line", "Dialplan says: No such command 'x'\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, IsNoSuchCommand([]byte(tt.out)))
		})
	}
}

func TestParseReload(t *testing.T) {
	notice := "[2026-11-23 20:34:32] NOTICE[3313] chan_sip.c: Reloading SIP\n"
	tests := []struct {
		name    string
		command string
		out     string
		want    error // nil means success
	}{
		{"sip reload prints nothing", "sip reload", "", nil},
		{"sip reload with a log line and blank lines", "sip reload", notice + "\r\n\n", nil},
		{"sip reload skipped", "sip reload", "Previous SIP reload not yet done\n", ErrReloadFailed},
		{"module reload", "module reload res_pjsip.so", "Module 'res_pjsip.so' reloaded successfully.\n", nil},
		{"module reload CRLF", "module reload res_pjsip.so", "Module 'res_pjsip.so' reloaded successfully.\r\n", nil},
		{"module reload other module's text", "module reload res_pjsip.so", "Module 'chan_sip.so' reloaded successfully.\n", ErrReloadFailed},
		{"module reload queued", "module reload res_pjsip.so", "Module 'res_pjsip.so' is queued for reload.\n", ErrReloadFailed},
		{"module not loaded", "module reload res_pjsip.so", "The module 'res_pjsip.so' was not found.\n", ErrReloadFailed},
		{"module reload prints nothing", "module reload res_pjsip.so", "", ErrReloadFailed},
		{"dialplan reload", "dialplan reload", "Dialplan reloaded.\n", nil},
		{"dialplan reload with extra text", "dialplan reload", "Dialplan reloaded.\nsomething else\n", ErrReloadFailed},
		{"pjsip reload is refused", "pjsip reload", "", ErrReloadFailed},
		{"unknown command", "core restart now", "", ErrReloadFailed},
		{"module reload without a module", "module reload", "", ErrReloadFailed},
		{"no such command", "pjsip reload", "No such command 'pjsip reload' (type 'core show help pjsip reload' for other possible commands)\n", ErrNoSuchCommand},
		{"not running", "dialplan reload", notRunningOut, ErrNotRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ParseReload(tt.command, []byte(tt.out))
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

func TestParseReloadQuotesTheText(t *testing.T) {
	err := ParseReload("module reload res_pjsip.so", []byte("The module 'res_pjsip.so' was not found.\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "module reload res_pjsip.so")
	assert.Contains(t, err.Error(), "was not found.")
}

func TestParseDatabaseGet(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    string
		wantErr error
	}{
		{"probe outcome", "Value: CHANUNAVAIL:1\n", "CHANUNAVAIL:1", nil},
		{"CRLF and a log line", "[Nov 23 20:34:32] NOTICE[1]: x.c:1 y: z\r\nValue: CONGESTION:21\r\n", "CONGESTION:21", nil},
		{"started", "Value: started\n", "started", nil},
		{"empty value", "Value: \n", "", nil},
		{"value with spaces", "Value: a b \n", "a b ", nil},
		{"not found", "Database entry not found.\n", "", ErrNotFound},
		{"empty output", "", "", ErrUnexpectedOutput},
		{"garbage", "Valeur: x\n", "", ErrUnexpectedOutput},
		{"func_db missing", "No such command 'database get' (type 'core show help database get' for other possible commands)\n", "", ErrNoSuchCommand},
		{"not running", notRunningOut, "", ErrNotRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDatabaseGet([]byte(tt.out))
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseCoreVersion(t *testing.T) {
	tests := []struct {
		out, want string
	}{
		{"Asterisk 11.25.3 built by root @ issabel on a x86_64 running Linux on 2019-01-01 00:00:00 UTC\n", "11.25.3"},
		{"Asterisk certified/18.9-cert5 built by x @ y on a x86_64 running Linux on 2023\r\n", "certified/18.9-cert5"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got, err := ParseCoreVersion([]byte(tt.out))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := ParseCoreVersion([]byte("Asterisk\n"))
	assert.ErrorIs(t, err, ErrUnexpectedOutput)
}

// dpLine formats one line of `dialplan show` as pbx.c does ("  %-17s %-45s [%s]").
func dpLine(first, text, registrar string) string {
	return fmt.Sprintf("  %-17s %-45s [%s]\n", first, text, registrar)
}

func TestParseDialplanShow(t *testing.T) {
	custom := "[ Context 'from-internal-custom' created by 'pbx_config' ]\n" +
		dpLine("'5000' =>", "1. Dial(SIP/omnileads/098098)", "extensions_custom.conf:3") +
		dpLine("'_1XXXX.' =>", "1. Dial(SIP/omnileads/${EXTEN})", "pbxfleet_extensions.conf:6") +
		dpLine("", "2. Hangup()", "pbxfleet_extensions.conf:7") +
		"\n-= 2 extensions (3 priorities) in 1 context. =-\n"
	customWant := DialplanShow{
		Contexts: []DialplanContext{{
			Name: "from-internal-custom", Registrar: "pbx_config",
			Extensions: []DialplanExtension{
				{Name: "5000", Priorities: []DialplanPriority{
					{Number: 1, App: "Dial", Data: "SIP/omnileads/098098", Registrar: "extensions_custom.conf:3", File: "extensions_custom.conf", Line: 3},
				}},
				{Name: "_1XXXX.", Priorities: []DialplanPriority{
					{Number: 1, App: "Dial", Data: "SIP/omnileads/${EXTEN}", Registrar: "pbxfleet_extensions.conf:6", File: "pbxfleet_extensions.conf", Line: 6},
					{Number: 2, App: "Hangup", Registrar: "pbxfleet_extensions.conf:7", File: "pbxfleet_extensions.conf", Line: 7},
				}},
			},
		}},
		Extensions: 2, Priorities: 3, ContextCount: 1,
	}

	probe := "[ Context 'pbxfleet-probe' created by 'pbx_config' ]\n" +
		dpLine("'_X.' =>", "1. Set(DB(pbxfleet/probe)=started)", "pbxfleet_extensions.conf:12") +
		dpLine("", "2. Dial(SIP/omnileads/${EXTEN},5,g)", "pbxfleet_extensions.conf:13") +
		dpLine("   [done]", "3. Set(DB(pbxfleet/probe)=${DIALSTATUS}:${HANGUPCAUSE})", "pbxfleet_extensions.conf:14") +
		dpLine("", "4. Set(x=$[1 + [2]])", "pbxfleet_extensions.conf:15") +
		dpLine("'100' (CID match '200') =>", "hint: SIP/100", "pbx_config") +
		dpLine("", "1. NoOp()", "pbx_config") +
		"\n" +
		"  Include =>        'from-internal-noxfer'                        [pbx_config]\n" +
		"  Ignore pattern => '9'                                           [pbx_config]\n" +
		"\n-= 2 extensions (6 priorities) in 1 context. =-\n"

	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, d DialplanShow)
	}{
		{
			name:  "context with our file and line",
			in:    custom,
			check: func(t *testing.T, d DialplanShow) { assert.Equal(t, customWant, d) },
		},
		{
			name:  "CRLF and log lines",
			in:    strings.ReplaceAll("[Nov 23 20:34:32] NOTICE[1]: pbx.c:1 x: y\n"+custom+"    -- Executing [5000@x:1] Dial()\n", "\n", "\r\n"),
			check: func(t *testing.T, d DialplanShow) { assert.Equal(t, customWant, d) },
		},
		{
			name: "one extension, singular summary",
			in: "[ Context 'from-internal-custom' created by 'pbx_config' ]\n" +
				dpLine("'5000' =>", "1. Dial(SIP/omnileads/098098)", "extensions_custom.conf:3") +
				"\n-= 1 extension (1 priority) in 1 context. =-\n",
			check: func(t *testing.T, d DialplanShow) {
				e, ok := d.Find("from-internal-custom", "5000")
				require.True(t, ok)
				assert.Equal(t, "Dial", e.Priorities[0].App)
				assert.Equal(t, 1, d.Extensions)
				assert.Equal(t, 1, d.Priorities)
				_, ok = d.Find("from-internal", "5000")
				assert.False(t, ok)
				_, ok = d.Find("from-internal-custom", "5001")
				assert.False(t, ok)
			},
		},
		{
			name: "labels, brackets in data, hints, CID match, includes",
			in:   probe,
			check: func(t *testing.T, d DialplanShow) {
				require.Len(t, d.Contexts, 1)
				c := d.Contexts[0]
				assert.Equal(t, []string{"from-internal-noxfer"}, c.Includes)
				require.Len(t, c.Extensions, 2)
				x := c.Extensions[0]
				require.Len(t, x.Priorities, 4)
				assert.Equal(t, DialplanPriority{Number: 3, Label: "done", App: "Set", Data: "DB(pbxfleet/probe)=${DIALSTATUS}:${HANGUPCAUSE}",
					Registrar: "pbxfleet_extensions.conf:14", File: "pbxfleet_extensions.conf", Line: 14}, x.Priorities[2])
				assert.Equal(t, "x=$[1 + [2]]", x.Priorities[3].Data)
				h := c.Extensions[1]
				assert.Equal(t, "100", h.Name)
				assert.Equal(t, "200", h.CIDMatch)
				assert.Equal(t, DialplanPriority{Hint: true, App: "SIP/100", Registrar: "pbx_config"}, h.Priorities[0])
				assert.Equal(t, DialplanPriority{Number: 1, App: "NoOp", Registrar: "pbx_config"}, h.Priorities[1])
			},
		},
		{
			name: "exten@context with an included context",
			in: "[ Context 'from-internal' created by 'pbx_config' ]\n" +
				dpLine("'_X.' =>", "1. Goto(from-internal-xfer,${EXTEN},1)", "extensions_additional.conf:80") +
				"\n[ Included context 'from-internal-custom' created by 'pbx_config' ]\n" +
				dpLine("'5000' =>", "1. Dial(SIP/omnileads/098098)", "pbxfleet_extensions.conf:3") +
				"\n-= 2 extensions (2 priorities) in 2 contexts. =-\n",
			check: func(t *testing.T, d DialplanShow) {
				require.Len(t, d.Contexts, 2)
				assert.False(t, d.Contexts[0].Included)
				assert.True(t, d.Contexts[1].Included)
				e, ok := d.Find("from-internal-custom", "5000")
				require.True(t, ok)
				assert.Equal(t, "pbxfleet_extensions.conf", e.Priorities[0].File)
				assert.Equal(t, 2, d.ContextCount)
			},
		},
		{
			name: "empty context",
			in:   "[ Context 'pbxfleet-probe' created by 'pbx_config' ]\n\n-= 0 extensions (0 priorities) in 1 context. =-\n",
			check: func(t *testing.T, d DialplanShow) {
				require.Len(t, d.Contexts, 1)
				assert.Empty(t, d.Contexts[0].Extensions)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDialplanShow([]byte(tt.in))
			require.NoError(t, err)
			tt.check(t, d)
		})
	}
}

func TestParseDialplanShowErrors(t *testing.T) {
	ctx := "[ Context 'from-internal-custom' created by 'pbx_config' ]\n"
	ext := dpLine("'5000' =>", "1. Dial(SIP/omnileads/098098)", "extensions_custom.conf:3")
	footer := "\n-= 1 extension (1 priority) in 1 context. =-\n"
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"no context", "There is no existence of 'nonexist' context\nCommand 'dialplan show nonexist' failed.\n", ErrNotFound},
		{"no extension", "There is no existence of 5001@from-internal-custom extension\nCommand 'dialplan show 5001@from-internal-custom' failed.\n", ErrNotFound},
		{"command failed alone", "Command 'dialplan show x' failed.\r\n", ErrNotFound},
		{"empty", "", ErrUnexpectedOutput},
		{"garbage", "\x00\x01\x02\n", ErrUnexpectedOutput},
		{"no summary", ctx + ext, ErrUnexpectedOutput},
		{"summary disagrees on extensions", ctx + ext + "\n-= 2 extensions (1 priority) in 1 context. =-\n", ErrUnexpectedOutput},
		{"summary disagrees on priorities", ctx + ext + "\n-= 1 extension (2 priorities) in 1 context. =-\n", ErrUnexpectedOutput},
		{"line before the first context", ext + ctx + footer, ErrUnexpectedOutput},
		{"line after the summary", ctx + ext + footer + ext, ErrUnexpectedOutput},
		{"priority without registrar", ctx + "  '5000' =>         1. Dial(SIP/omnileads/098098)\n" + footer, ErrUnexpectedOutput},
		{"priority without a number", ctx + dpLine("'5000' =>", "Dial(SIP/omnileads/098098)", "x.conf:1") + footer, ErrUnexpectedOutput},
		{"continuation before any extension", ctx + dpLine("", "2. Hangup()", "x.conf:2") + footer, ErrUnexpectedOutput},
		{"unknown line", ctx + ext + "what\n" + footer, ErrUnexpectedOutput},
		{"not running", notRunningOut, ErrNotRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDialplanShow([]byte(tt.in))
			assert.ErrorIs(t, err, tt.want)
		})
	}
}
