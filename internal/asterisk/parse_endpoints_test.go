package asterisk

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// endpointsHeader is the fixed header block of `pjsip show endpoints`, taken from
// the capture so synthetic cases share its exact bytes.
func endpointsHeader(t *testing.T) string {
	t.Helper()
	b := string(readFixture(t, "oml_pjsip_show_endpoints_Avail.txt"))
	i := strings.Index(b, "\n Endpoint:  issabel ")
	require.Positive(t, i)
	return b[:i+1]
}

// Blocks in res_pjsip's layout (columns as in the captures).
const (
	issabelBlock = ` Endpoint:  issabel                                              Not in use    0 of inf
    OutAuth:  issabel-oauth/omnileads
     InAuth:  issabel-iauth/issabel
        Aor:  issabel                                            0
      Contact:  issabel/sip:127.0.0.2:5060                 067c650437 Avail         0.395
  Transport:  trunk-transport           udp      0      0  127.0.0.3:5161
   Identify:  issabel-identify/issabel
        Match: 127.0.0.2:5060/32
`
	nonQualBlock = ` Endpoint:  issabel_cloud/5000                                    Unavailable   0 of inf
    OutAuth:  issabel_cloud-oauth/omnileads
     InAuth:  issabel_cloud-iauth/issabel
        Aor:  issabel_cloud                                      0
      Contact:  issabel_cloud/sip:203.0.113.7:5060         1a2b3c4d5e NonQual         nan
  Transport:  trunk-nat-transport       udp      0      0  0.0.0.0:5162
   Identify:  issabel_cloud-identify/issabel_cloud
        Match: 203.0.113.7/32
`
	inUseBlock = ` Endpoint:  issabel                                              In use        1 of inf
     InAuth:  issabel-iauth/issabel
        Aor:  issabel                                            0
      Contact:  issabel/sip:127.0.0.2:5060                 067c650437 Unknown         nan
      Contact:  issabel/sip:127.0.0.4:5060                 99aa00bb11 Created       -nan
    Channel:  PJSIP/issabel-00000001                           Dialing Offhook  00:00:03
        Exten: 098098                    CLCID: "Anonymous" <>
   Identify:  issabel-identify/issabel
        Match: 127.0.0.2:5060/32
        Match: 127.0.0.4:5060/32
`
)

func TestParseEndpoints(t *testing.T) {
	header := endpointsHeader(t)
	avail := issabelEndpoint("Not in use", ContactAvail, 0.395, true)
	nonQual := Endpoint{
		Name: "issabel_cloud", CallerID: "5000", State: "Unavailable", Channels: "0", MaxChannels: "inf",
		OutAuth:    []AuthRef{{ID: "issabel_cloud-oauth", User: "omnileads"}},
		InAuth:     []AuthRef{{ID: "issabel_cloud-iauth", User: "issabel"}},
		AORs:       []string{"issabel_cloud"},
		Contacts:   []Contact{{AOR: "issabel_cloud", URI: "sip:203.0.113.7:5060", Hash: "1a2b3c4d5e", Status: ContactNonQual}},
		Transports: []TransportRef{{ID: "trunk-nat-transport", Type: "udp", Bind: "0.0.0.0:5162"}},
		Identifies: []string{"issabel_cloud-identify"},
		Matches:    []string{"203.0.113.7/32"},
	}
	inUse := Endpoint{
		Name: "issabel", State: "In use", Channels: "1", MaxChannels: "inf",
		InAuth: []AuthRef{{ID: "issabel-iauth", User: "issabel"}},
		AORs:   []string{"issabel"},
		Contacts: []Contact{
			{AOR: "issabel", URI: "sip:127.0.0.2:5060", Hash: "067c650437", Status: ContactUnknown},
			{AOR: "issabel", URI: "sip:127.0.0.4:5060", Hash: "99aa00bb11", Status: ContactCreated},
		},
		ActiveChannels: []EndpointChannel{{ID: "PJSIP/issabel-00000001", State: "Dialing Offhook", Time: "00:00:03", Exten: "098098"}},
		Identifies:     []string{"issabel-identify"},
		Matches:        []string{"127.0.0.2:5060/32", "127.0.0.4:5060/32"},
	}
	notice := "[Nov 23 20:34:32] NOTICE[5525]: res_pjsip/pjsip_distributor.c:676 log_failed_request: Request 'OPTIONS' from '<sip:issabel@127.0.0.2>' failed for '127.0.0.2:5060' - No matching endpoint found\n"

	tests := []struct {
		name string
		in   string
		want []Endpoint
	}{
		{"NonQual contact, caller id, nan", header + nonQualBlock + "\n\nObjects found: 1\n\n", []Endpoint{nonQual}},
		{"channels, several contacts, -nan", header + inUseBlock + "\n\nObjects found: 1\n", []Endpoint{inUse}},
		{"three endpoints", header + issabelBlock + "\n" + nonQualBlock + "\n" + inUseBlock + "\n\nObjects found: 3\n", []Endpoint{avail, nonQual, inUse}},
		{"log lines interleaved", notice + header + issabelBlock + notice + "\nObjects found: 1\n" + notice, []Endpoint{avail}},
		{"CRLF line endings", strings.ReplaceAll(header+issabelBlock+"\n\nObjects found: 1\n\n", "\n", "\r\n"), []Endpoint{avail}},
		{"no objects with CRLF", "No objects found.\r\n\r\n", []Endpoint{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEndpoints([]byte(tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseEndpointsErrors(t *testing.T) {
	header := endpointsHeader(t)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrUnexpectedOutput},
		{"garbage", "\xff\xfe garbage\n", ErrUnexpectedOutput},
		{"header only", header, ErrUnexpectedOutput},
		{"count disagrees", header + issabelBlock + "\nObjects found: 2\n", ErrUnexpectedOutput},
		{"no Objects found line", header + issabelBlock, ErrUnexpectedOutput},
		{"line after Objects found", header + issabelBlock + "\nObjects found: 1\nhello\n", ErrUnexpectedOutput},
		{"no objects then more", "No objects found.\n Endpoint:  x  Unavailable  0 of inf\n", ErrUnexpectedOutput},
		{"line before the first endpoint", header + "    OutAuth:  a/b\n" + issabelBlock + "Objects found: 1\n", ErrUnexpectedOutput},
		{"bad endpoint line", header + " Endpoint:  issabel\nObjects found: 1\n", ErrUnexpectedOutput},
		{"bad contact rtt", header + strings.Replace(issabelBlock, "0.395", "fast", 1) + "Objects found: 1\n", ErrUnexpectedOutput},
		{"contact without aor", header + strings.Replace(issabelBlock, "issabel/sip:", "sip:", 1) + "Objects found: 1\n", ErrUnexpectedOutput},
		{"short transport", header + strings.Replace(issabelBlock, "udp      0      0  ", "", 1) + "Objects found: 1\n", ErrUnexpectedOutput},
		{"label-less line", header + issabelBlock + "what is this\nObjects found: 1\n", ErrUnexpectedOutput},
		{"res_pjsip not loaded", "No such command 'pjsip show endpoints' (type 'core show help pjsip show' for other possible commands)\n", ErrNoSuchCommand},
		{"not running", "Unable to connect to remote asterisk (does /var/run/asterisk/asterisk.ctl exist?)\n", ErrNotRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEndpoints([]byte(tt.in))
			assert.ErrorIs(t, err, tt.want)
			assert.Nil(t, got)
		})
	}
}

func TestContactStatusPredicates(t *testing.T) {
	tests := []struct {
		s                  ContactStatus
		reachable, pending bool
	}{
		{ContactAvail, true, false},
		{ContactUnavail, false, false},
		{ContactUnknown, false, true},
		{ContactNonQual, false, true},
		{ContactCreated, false, true},
		{ContactRemoved, false, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.s), func(t *testing.T) {
			assert.Equal(t, tt.reachable, tt.s.Reachable())
			assert.Equal(t, tt.pending, tt.s.Pending())
			e := Endpoint{Contacts: []Contact{{Status: tt.s}}}
			assert.Equal(t, tt.reachable, e.Reachable())
			assert.Equal(t, tt.pending, e.Pending())
		})
	}
}

func TestEndpointPredicatesMixedContacts(t *testing.T) {
	e := Endpoint{Contacts: []Contact{{Status: ContactUnavail}, {Status: ContactNonQual}}}
	assert.False(t, e.Reachable())
	assert.True(t, e.Pending(), "one pending contact keeps the endpoint pending")
	e.Contacts = append(e.Contacts, Contact{Status: ContactAvail})
	assert.True(t, e.Reachable())
	assert.False(t, e.Pending(), "an Avail contact is an answer")
	assert.False(t, Endpoint{}.Reachable())
	assert.False(t, Endpoint{}.Pending(), "no contact at all is not pending")
}

func TestFindEndpoint(t *testing.T) {
	eps := []Endpoint{{Name: "issabel"}, {Name: "issabel-nat"}}
	e, ok := FindEndpoint(eps, "issabel-nat")
	assert.True(t, ok)
	assert.Equal(t, "issabel-nat", e.Name)
	_, ok = FindEndpoint(eps, "issabel-n")
	assert.False(t, ok)
	_, ok = FindEndpoint(nil, "issabel")
	assert.False(t, ok)
}
