package asterisk

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func checkEndpointDetail(t *testing.T, b []byte) {
	d, err := ParseEndpoint(b)
	require.NoError(t, err)
	assert.Equal(t, issabelEndpoint("Not in use", ContactAvail, 0.395, true), d.Endpoint)
	// Every parameter line of the capture, empty values included.
	assert.Len(t, d.Params, 139)
	for k, v := range map[string]string{
		"100rel":                      "yes",
		"@pjsip_wizard":               "issabel",
		"accountcode":                 "",
		"allow":                       "(alaw|ulaw)",
		"aors":                        "issabel",
		"auth":                        "issabel-iauth",
		"outbound_auth":               "issabel-oauth",
		"callerid":                    "<unknown>",
		"codec_prefs_incoming_answer": "prefer:pending, operation:intersect, keep:all, transcode:allow",
		"context":                     "from-pbx",
		"dtmf_mode":                   "rfc4733",
		"force_rport":                 "false",
		"from_user":                   "omnileads",
		"rewrite_contact":             "false",
		"rtp_symmetric":               "false",
		"sdp_owner":                   "-",
		"timers":                      "yes",
		"transport":                   "trunk-transport",
		"webrtc":                      "no",
	} {
		got, ok := d.Params[k]
		assert.True(t, ok, k)
		assert.Equal(t, v, got, k)
	}
	assert.NotContains(t, d.Params, "ParameterName")
}

func TestParseEndpoint(t *testing.T) {
	base := string(readFixture(t, "oml_pjsip_show_endpoint_issabel.txt"))
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, d EndpointDetail)
	}{
		{
			name: "CRLF and log lines",
			in: strings.ReplaceAll("[2026-11-23 20:34:32] WARNING[5525] res_pjsip.c: something\n"+
				strings.Replace(base, " context ", "[Nov 23 20:34:32] NOTICE[1]: x.c:1 y: z\n context ", 1), "\n", "\r\n"),
			check: func(t *testing.T, d EndpointDetail) {
				assert.Equal(t, "from-pbx", d.Params["context"])
				assert.Len(t, d.Params, 139)
				assert.Equal(t, "issabel", d.Endpoint.Name)
			},
		},
		{
			name: "unavailable with nan",
			in:   strings.NewReplacer("Not in use ", "Unavailable", "Avail         0.395", "Unavail         nan").Replace(base),
			check: func(t *testing.T, d EndpointDetail) {
				assert.Equal(t, "Unavailable", d.Endpoint.State)
				assert.Equal(t, []Contact{{AOR: "issabel", URI: "sip:127.0.0.2:5060", Hash: "067c650437", Status: ContactUnavail}}, d.Endpoint.Contacts)
			},
		},
		{
			name: "duplicate parameter keeps the first",
			in:   base + " context                            : other\n",
			check: func(t *testing.T, d EndpointDetail) {
				assert.Equal(t, "from-pbx", d.Params["context"])
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseEndpoint([]byte(tt.in))
			require.NoError(t, err)
			tt.check(t, d)
		})
	}
}

func TestParseEndpointErrors(t *testing.T) {
	base := string(readFixture(t, "oml_pjsip_show_endpoint_issabel.txt"))
	table := strings.Index(base, " ParameterName")
	require.Positive(t, table)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"not found", "Unable to find object issabel.\n", ErrNotFound},
		{"not found with CRLF", "Unable to find object issabel.\r\n\r\n", ErrNotFound},
		{"empty", "", ErrUnexpectedOutput},
		{"garbage", "::::\n\x00\n", ErrUnexpectedOutput},
		{"no parameter table", base[:table], ErrUnexpectedOutput},
		{"empty parameter table", base[:table] + " ParameterName                      : ParameterValue\n =====\n", ErrUnexpectedOutput},
		{"parameter line without a colon", base + " what\n", ErrUnexpectedOutput},
		{"two endpoint blocks", strings.Replace(base, " ParameterName", " Endpoint:  other    Unavailable   0 of inf\n ParameterName", 1), ErrUnexpectedOutput},
		{"no endpoint block", strings.Replace(base, " Endpoint:  issabel      ", " Endpont:  issabel      ", 1), ErrUnexpectedOutput},
		{"res_pjsip not loaded", "No such command 'pjsip show endpoint issabel' (type 'core show help pjsip show endpoint' for other possible commands)\n", ErrNoSuchCommand},
		{"not running", "Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)\n", ErrNotRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEndpoint([]byte(tt.in))
			assert.ErrorIs(t, err, tt.want)
		})
	}
}
