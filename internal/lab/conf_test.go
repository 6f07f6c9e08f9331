package lab

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadConf(t *testing.T) {
	t.Parallel()
	type sec struct {
		name     string
		template bool
		vars     []string // "name=value@file:line"
	}
	tests := []struct {
		name    string
		files   map[string]string
		want    []sec
		wantErr error
	}{
		{
			name:  "comments, escapes and object lines",
			files: map[string]string{"main.conf": "; header\n[a] ; trailing\nk = v ; comment\nsecret=x\\;y\nexten => 1,1,NoOp()\n"},
			want:  []sec{{name: "a", vars: []string{"k=v@main.conf:3", "secret=x;y@main.conf:4", "exten=1,1,NoOp()@main.conf:5"}}},
		},
		{
			name:  "block comments nest and span lines",
			files: map[string]string{"main.conf": "[a]\nx=1 ;-- gone\n[b]\ny=2 ;-- deeper --;\nstill=gone\n--; z=3\nw=4\n"},
			want:  []sec{{name: "a", vars: []string{"x=1@main.conf:2", "z=3@main.conf:6", "w=4@main.conf:7"}}},
		},
		{
			name:  "templates and inheritance",
			files: map[string]string{"main.conf": "[t](!)\ntype=friend\nqualify=yes\n[peer](t)\nhost=1.2.3.4\n[peer2](t,peer)\nport=5\n"},
			want: []sec{
				{name: "t", template: true, vars: []string{"type=friend@main.conf:2", "qualify=yes@main.conf:3"}},
				{name: "peer", vars: []string{"type=friend@main.conf:2", "qualify=yes@main.conf:3", "host=1.2.3.4@main.conf:5"}},
				{name: "peer2", vars: []string{"type=friend@main.conf:2", "qualify=yes@main.conf:3",
					"type=friend@main.conf:2", "qualify=yes@main.conf:3", "host=1.2.3.4@main.conf:5", "port=5@main.conf:7"}},
			},
		},
		{
			name: "includes continue the current category; repeated categories are kept; (+) appends",
			files: map[string]string{
				"main.conf": "[ctx]\na=1\n#include \"inc.conf\"\nb=2\n[ctx](+)\nc=3\n",
				"inc.conf":  "i=1\n[ctx]\nj=2\n",
			},
			want: []sec{
				{name: "ctx", vars: []string{"a=1@main.conf:2", "i=1@inc.conf:1"}},
				{name: "ctx", vars: []string{"j=2@inc.conf:3", "b=2@main.conf:4", "c=3@main.conf:6"}},
			},
		},
		{
			name:  "tryinclude of a missing file is fine",
			files: map[string]string{"main.conf": "[a]\n#tryinclude nothere.conf\nx=1\n"},
			want:  []sec{{name: "a", vars: []string{"x=1@main.conf:3"}}},
		},
		{
			name:    "include of a missing file rejects the file",
			files:   map[string]string{"main.conf": "[a]\n#include nothere.conf\n"},
			wantErr: ErrIncludeMissing,
		},
		{
			name:    "include loop",
			files:   map[string]string{"main.conf": "[a]\n#include main.conf\n"},
			wantErr: ErrIncludeDepth,
		},
		{
			name:    "variable before any category",
			files:   map[string]string{"main.conf": "x=1\n"},
			wantErr: ErrConfSyntax,
		},
		{
			name:    "unknown template",
			files:   map[string]string{"main.conf": "[a](nope)\n"},
			wantErr: ErrConfSyntax,
		},
		{
			name:    "unclosed header",
			files:   map[string]string{"main.conf": "[a\n"},
			wantErr: ErrConfSyntax,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, c := range tc.files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644))
			}
			conf, err := ReadConf(dir, "main.conf")
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			var got []sec
			for _, s := range conf.Sections {
				g := sec{name: s.Name, template: s.Template}
				for _, v := range s.Vars {
					g.vars = append(g.vars, v.Name+"="+v.Value+"@"+v.File+":"+itoa(v.Line))
				}
				got = append(got, g)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for n > 0 {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}

func TestDialplanMatchingAndMerge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "extensions.conf"), []byte(`[general]
static=yes
[globals]
G=glob
[from-internal]
include => from-internal-custom
exten => _X.,1,NoOp(catch all)
#include extensions_custom.conf
`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "extensions_custom.conf"), []byte(`[from-internal-custom]
exten => 5000,1,NoOp(stock)
#include pbxfleet_extensions.conf
`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pbxfleet_extensions.conf"), []byte(`[from-internal-custom]
exten => _1XXXX.,1,NoOp(agent)
exten => _1[0-3]XXX.,1,NoOp(narrow)
exten => 99999,1,Hangup(1)
exten => 5000,1,NoOp(duplicate is ignored)
`), 0o644))
	dp, warnings, err := loadDialplan(dir)
	require.NoError(t, err)
	assert.Len(t, warnings, 1, "duplicate priority")
	c := dp.contexts["from-internal-custom"]
	require.NotNil(t, c)
	var order []string
	for _, e := range c.extens {
		order = append(order, e.name)
	}
	assert.Equal(t, []string{"5000", "99999", "_1[0-3]XXX.", "_1XXXX."}, order, "exact first, then narrower patterns")
	tests := []struct{ ctx, number, want, wantCtx string }{
		{"from-internal", "5000", "5000", "from-internal"}, // the local catch-all wins over includes
		{"from-internal-custom", "5000", "5000", "from-internal-custom"},
		{"from-internal-custom", "100611", "_1[0-3]XXX.", "from-internal-custom"},
		{"from-internal-custom", "10061", "", ""}, // "." needs one more digit
		{"from-internal-custom", "150611", "_1XXXX.", "from-internal-custom"},
		{"from-internal-custom", "1006", "", ""},
		{"nowhere", "1", "", ""},
	}
	for _, tc := range tests {
		e, ctx := dp.find(tc.ctx, tc.number)
		if tc.want == "" {
			assert.Nil(t, e, tc.number)
			continue
		}
		require.NotNil(t, e, tc.number)
		if tc.ctx == "from-internal" {
			assert.Equal(t, "_X.", e.name)
			continue
		}
		assert.Equal(t, tc.want, e.name, tc.number)
		assert.Equal(t, tc.wantCtx, ctx)
	}
	assert.Equal(t, "glob", dp.globals["G"])
	assert.Equal(t, "pbxfleet_extensions.conf", c.extens[1].prios[0].file)
	assert.Equal(t, 4, c.extens[1].prios[0].line) // 99999
}

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, number string
		want            bool
	}{
		{"_X.", "1", false},
		{"_X.", "12", true},
		{"_X!", "1", true},
		{"_1XXX.", "10061", true},
		{"_1XXX.", "1006", false},
		{"_NXX", "211", true},
		{"_NXX", "111", false},
		{"_Z[5-7]", "16", true},
		{"_Z[5-7]", "18", false},
		{"555-1234", "5551234", true},
		{"99999", "9999", false},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, extenMatch(tc.pattern, tc.number), "%s ~ %s", tc.pattern, tc.number)
	}
}

func TestWizardObjects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, WriteStockFiles(dir, RoleOML, "127.0.28.3", ""))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "oml_pjsip_wizard_custom.conf"), []byte(`[docker](!)
type=wizard
transport=trunk-nat-docker-transport
sends_auth=yes
accepts_auth=yes
endpoint/rtp_symmetric=yes
endpoint/force_rport=yes
endpoint/rewrite_contact=yes
endpoint/allow=ulaw
remote_hosts=127.0.28.2
outbound_auth/password=x
[issabel](docker)
endpoint/context=from-pbx
[broken](docker)
endpoint/no_such_option=1
`), 0o644))
	pc, warnings, err := loadPJSIP(dir, netip.MustParseAddr("127.0.28.3"))
	require.NoError(t, err)
	require.Len(t, pc.endpoints, 1, "a wizard with an unknown option is refused whole")
	assert.Contains(t, strings.Join(warnings, "\n"), "no_such_option")
	e := pc.endpoints["issabel"]
	require.NotNil(t, e)
	params := map[string]string{}
	for _, p := range endpointParams(e) {
		params[p[0]] = p[1]
	}
	assert.Equal(t, "true", params["rtp_symmetric"])
	assert.Equal(t, "true", params["rewrite_contact"])
	assert.Equal(t, "(ulaw)", params["allow"])
	assert.Equal(t, "from-pbx", params["context"])
	assert.Equal(t, "issabel-iauth", params["auth"])
	assert.Equal(t, "trunk-nat-docker-transport", params["transport"])
	assert.Equal(t, "sip:127.0.28.2", e.contacts[0].uri)
	assert.Equal(t, uint16(5060), e.contacts[0].addr.Port())
	assert.Equal(t, "127.0.28.2/32", e.identify[0].text)
	assert.Equal(t, "issabel", e.inAuth.user, "inbound user defaults to the section name")
	out := formatPJSIPEndpoints(pc, nil)
	assert.Contains(t, out, "  Transport:  trunk-nat-docker-transport     udp      0      0  127.0.28.3:5163\n")
}
