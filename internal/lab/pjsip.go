package lab

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// pjsipConfig is res_pjsip's running configuration: the transports of pjsip.conf and
// the objects the config wizard made from pjsip_wizard.conf.
type pjsipConfig struct {
	transports []*pjTransport
	endpoints  map[string]*pjEndpoint
}

// pjTransport is one type=transport section.
type pjTransport struct {
	name     string
	protocol string
	bind     netip.AddrPort
}

// pjAuth is one auth object (<wizard>-iauth or <wizard>-oauth).
type pjAuth struct {
	id       string
	user     string
	password string
}

// pjContact is one static contact of an AOR (a wizard remote_hosts entry).
type pjContact struct {
	uri  string
	addr netip.AddrPort // invalid when the host is not an IP literal
}

// hash is the contact id hash `pjsip show endpoints` prints: md5 of the URI.
func (c pjContact) hash() string {
	sum := md5.Sum([]byte(c.uri))
	return hex.EncodeToString(sum[:])[:10]
}

// pjMatch is one identify match criterion.
type pjMatch struct {
	text   string
	prefix netip.Prefix
	port   uint16 // 0: any source port
}

// pjEndpoint is everything one wizard section made: the endpoint, its AOR and
// contacts, its auths and its identify.
type pjEndpoint struct {
	name        string
	transport   string
	context     string
	fromUser    string
	identifyBy  []string
	inAuth      *pjAuth
	outAuth     *pjAuth
	hasAOR      bool
	maxContacts int
	qualifyFreq time.Duration
	contacts    []pjContact
	identify    []pjMatch
	allow       []string
	params      map[string]string
}

// contactKey names one contact's qualify state.
func (e *pjEndpoint) contactKey(c pjContact) string { return e.name + "/" + c.uri }

func (c *pjsipConfig) sortedEndpoints() []*pjEndpoint {
	out := make([]*pjEndpoint, 0, len(c.endpoints))
	for _, e := range c.endpoints {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (c *pjsipConfig) transport(name string) *pjTransport {
	for _, t := range c.transports {
		if t.name == name {
			return t
		}
	}
	return nil
}

// loadPJSIP reads pjsip.conf (transports) and pjsip_wizard.conf (trunks) from dir.
// A transport bound to the wildcard binds fallback instead: the lab stays on loopback.
func loadPJSIP(dir string, fallback netip.Addr) (*pjsipConfig, []string, error) {
	conf, err := ReadConf(dir, "pjsip.conf")
	if err != nil {
		return nil, nil, err
	}
	cfg := &pjsipConfig{endpoints: map[string]*pjEndpoint{}}
	warnings := conf.Warnings
	for _, s := range conf.Sections {
		if s.Template {
			continue
		}
		switch strings.ToLower(s.Value("type", "")) {
		case "transport":
			t := &pjTransport{name: s.Name, protocol: strings.ToLower(s.Value("protocol", "udp"))}
			host, port := splitHostPort(s.Value("bind", "0.0.0.0"))
			ip, err := netip.ParseAddr(host)
			if err != nil || ip.IsUnspecified() {
				ip = fallback
			}
			if port == 0 {
				port = sipDefaultPort
			}
			t.bind = netip.AddrPortFrom(ip, uint16(port))
			if t.protocol != "udp" {
				warnings = append(warnings, fmt.Sprintf("transport %s: protocol %s not served by the lab", t.name, t.protocol))
			}
			cfg.transports = append(cfg.transports, t)
		case "global", "system", "":
		default:
			warnings = append(warnings, fmt.Sprintf("[%s] type=%s in pjsip.conf ignored by the lab (trunks come from the wizard)",
				s.Name, s.Value("type", "")))
		}
	}
	wiz, err := ReadConf(dir, "pjsip_wizard.conf")
	if err != nil {
		return nil, warnings, err
	}
	warnings = append(warnings, wiz.Warnings...)
	for _, s := range wiz.Sections {
		if s.Template || !strings.EqualFold(s.Value("type", ""), "wizard") {
			continue
		}
		ep, err := buildWizard(s)
		if err != nil {
			// The wizard refuses the whole object, as sorcery does on a bad option.
			warnings = append(warnings, err.Error())
			continue
		}
		cfg.endpoints[ep.name] = ep
	}
	return cfg, warnings, nil
}

// buildWizard applies res_pjsip_config_wizard's rules to one type=wizard section.
func buildWizard(s *Section) (*pjEndpoint, error) {
	ep := &pjEndpoint{
		name:       s.Name,
		context:    "default",
		identifyBy: []string{"username", "ip"},
		hasAOR:     true,
		params:     map[string]string{},
	}
	defaults := endpointDefaults()
	known := map[string]string{}
	for _, d := range defaults {
		known[d[0]] = d[1]
	}
	get := func(k string) string { return s.Value(k, "") }
	ep.transport = get("transport")
	for _, v := range s.Vars {
		key := strings.ToLower(v.Name)
		param, isEndpoint := strings.CutPrefix(key, "endpoint/")
		switch {
		case isEndpoint:
			switch param {
			case "allow", "disallow":
				ep.allow = applyCodecs(ep.allow, param, v.Value)
				continue
			case "context":
				ep.context = v.Value
			case "from_user":
				ep.fromUser = v.Value
			case "transport":
				ep.transport = v.Value
			case "identify_by":
				ep.identifyBy = nil
				for _, m := range strings.Split(v.Value, ",") {
					ep.identifyBy = append(ep.identifyBy, strings.TrimSpace(m))
				}
			}
			def, ok := known[param]
			if !ok {
				return nil, fmt.Errorf("wizard %s: could not find option suitable for category '%s' named '%s' at line %d of %s",
					s.Name, s.Name, param, v.Line, v.File)
			}
			ep.params[param] = normaliseParam(def, v.Value)
		case key == "aor/qualify_frequency":
			n, _ := strconv.Atoi(v.Value)
			ep.qualifyFreq = time.Duration(n) * time.Second
		case key == "aor/max_contacts":
			ep.maxContacts, _ = strconv.Atoi(v.Value)
		case key == "has_aor":
			ep.hasAOR = !confFalse(v.Value)
		}
	}
	acceptsRegs := confTrue(get("accepts_registrations"))
	if acceptsRegs && ep.maxContacts == 0 {
		ep.maxContacts = 1
	}
	if confTrue(get("accepts_auth")) {
		ep.inAuth = &pjAuth{id: ep.name + "-iauth", user: s.Value("inbound_auth/username", ep.name), password: get("inbound_auth/password")}
	}
	if confTrue(get("sends_auth")) {
		ep.outAuth = &pjAuth{id: ep.name + "-oauth", user: s.Value("outbound_auth/username", ep.name), password: get("outbound_auth/password")}
	}
	if hosts := get("remote_hosts"); hosts != "" && !acceptsRegs {
		for _, h := range strings.Split(hosts, ",") {
			h = strings.TrimSpace(h)
			if h == "" {
				continue
			}
			c := pjContact{uri: "sip:" + h}
			host, port := splitHostPort(h)
			m := pjMatch{}
			if ip, err := netip.ParseAddr(host); err == nil {
				if port == 0 {
					c.addr = netip.AddrPortFrom(ip, sipDefaultPort)
				} else {
					c.addr = netip.AddrPortFrom(ip, uint16(port))
				}
				m.prefix = netip.PrefixFrom(ip, ip.BitLen())
				m.port = uint16(port)
				m.text = fmt.Sprintf("%s/%d", h, ip.BitLen())
			} else {
				m.text = h
			}
			if ep.hasAOR && !confTrue(get("sends_registrations")) {
				ep.contacts = append(ep.contacts, c)
			}
			ep.identify = append(ep.identify, m)
		}
	}
	return ep, nil
}

// normaliseParam renders a configured value the way the endpoint's objectset prints
// it: boolean options as true/false, everything else as written.
func normaliseParam(def, value string) string {
	if def == "true" || def == "false" {
		switch {
		case confTrue(value):
			return "true"
		case confFalse(value):
			return "false"
		}
	}
	return value
}

// endpointState is the device state of an endpoint: available as soon as one
// contact is (or qualify is off), Unavailable before the first qualify and when down.
func endpointState(e *pjEndpoint, states map[string]*qualifyState) string {
	if len(e.contacts) == 0 {
		return "Unavailable"
	}
	for _, c := range e.contacts {
		if e.qualifyFreq <= 0 {
			return "Not in use"
		}
		if st := states[e.contactKey(c)]; st != nil && st.status == qualifyUp {
			return "Not in use"
		}
	}
	return "Unavailable"
}

// contactStatus is the short status label and RTT text of one contact.
func contactStatus(e *pjEndpoint, c pjContact, states map[string]*qualifyState) (string, string) {
	nan := fmt.Sprintf("%11s", "nan")
	if e.qualifyFreq <= 0 {
		return "NonQual", nan
	}
	st := states[e.contactKey(c)]
	switch {
	case st == nil || st.status == qualifyPending:
		return "NonQual", nan
	case st.status == qualifyDown:
		return "Unavail", nan
	}
	return "Avail", fmt.Sprintf("%11.3f", float64(st.rtt.Microseconds())/1000.0)
}

// pjsipHeader is the fixed header of every `pjsip show endpoint(s)` listing.
const pjsipHeader = "\n" +
	" Endpoint:  <Endpoint/CID.....................................>  <State.....>  <Channels.>\n" +
	"    I/OAuth:  <AuthId/UserName...........................................................>\n" +
	"        Aor:  <Aor............................................>  <MaxContact>\n" +
	"      Contact:  <Aor/ContactUri..........................> <Hash....> <Status> <RTT(ms)..>\n" +
	"  Transport:  <TransportId........>  <Type>  <cos>  <tos>  <BindAddress..................>\n" +
	"   Identify:  <Identify/Endpoint.........................................................>\n" +
	"        Match:  <criteria.........................>\n" +
	"    Channel:  <ChannelId......................................>  <State.....>  <Time.....>\n" +
	"        Exten: <DialedExten...........>  CLCID: <ConnectedLineCID.......>\n" +
	"==========================================================================================\n" +
	"\n"

// writeEndpointBody writes one endpoint block: res_pjsip's cli_endpoint_print_body
// and the children it recurses into (auths, aor and contacts, transport, identify),
// with their exact printf formats; CLI_LAST_TABSTOP is 62. The blank line after
// each endpoint is Asterisk's too.
func writeEndpointBody(b *strings.Builder, cfg *pjsipConfig, e *pjEndpoint, states map[string]*qualifyState) {
	name := e.name
	if num := callerIDNumber(e.params["callerid"]); num != "" {
		name += "/" + num
	}
	fmt.Fprintf(b, "%9s:  %-51.51s  %-12.12s  %d of %s\n", "Endpoint", name, endpointState(e, states), 0, "inf")
	if e.outAuth != nil {
		fmt.Fprintf(b, "%11s:  %s/%s\n", "OutAuth", e.outAuth.id, e.outAuth.user)
	}
	if e.inAuth != nil {
		fmt.Fprintf(b, "%11s:  %s/%s\n", "InAuth", e.inAuth.id, e.inAuth.user)
	}
	if e.hasAOR {
		fmt.Fprintf(b, "%11s:  %-39.39s %12d\n", "Aor", e.name, e.maxContacts)
		for _, c := range e.contacts {
			status, rtt := contactStatus(e, c, states)
			// "%*s:  %s/%-*.*s": the AOR in full, the URI cut to what is left of 42.
			uri := c.uri
			if flex := 41 - len(e.name); flex >= 0 {
				uri = fmt.Sprintf("%-*.*s", flex, flex, c.uri)
			} else {
				// C takes a negative * width as left-justified |width| and a negative
				// precision as none.
				uri = fmt.Sprintf("%-*s", -flex, c.uri)
			}
			fmt.Fprintf(b, "%13s:  %s/%s %-10.10s %-7.7s %s\n", "Contact", e.name, uri, c.hash(), status, rtt)
		}
	}
	if t := cfg.transport(e.transport); t != nil {
		fmt.Fprintf(b, "%11s:  %-21s  %6s  %5d  %5d  %s\n", "Transport", t.name, t.protocol, 0, 0, t.bind)
	}
	if len(e.identify) > 0 {
		fmt.Fprintf(b, "%11s:  %s/%s\n", "Identify", e.name+"-identify", e.name)
		for _, m := range e.identify {
			fmt.Fprintf(b, "%13s: %s\n", "Match", m.text)
		}
	}
	b.WriteString("\n")
}

// callerIDNumber is the number part of a callerid= value ("Name" <1234> or 1234).
func callerIDNumber(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return v[i+1 : i+j]
		}
	}
	v = strings.TrimSpace(v)
	if v != "" && strings.Trim(v, "+0123456789") == "" {
		return v
	}
	return ""
}

// formatPJSIPEndpoints renders `pjsip show endpoints`.
func formatPJSIPEndpoints(cfg *pjsipConfig, states map[string]*qualifyState) string {
	eps := cfg.sortedEndpoints()
	if len(eps) == 0 {
		return "No objects found.\n\n"
	}
	var b strings.Builder
	b.WriteString(pjsipHeader)
	for _, e := range eps {
		writeEndpointBody(&b, cfg, e, states)
	}
	fmt.Fprintf(&b, "\nObjects found: %d\n\n", len(eps))
	return b.String()
}

// formatPJSIPEndpoint renders `pjsip show endpoint <name>`: the block plus the
// ParameterName/ParameterValue table of the endpoint object.
func formatPJSIPEndpoint(cfg *pjsipConfig, name string, states map[string]*qualifyState) string {
	e, ok := cfg.endpoints[name]
	if !ok {
		return fmt.Sprintf("Unable to find object %s.\n\n", name)
	}
	var b strings.Builder
	b.WriteString(pjsipHeader)
	writeEndpointBody(&b, cfg, e, states)
	b.WriteString("\n")
	params := endpointParams(e)
	nameW, valueW := 13, 14
	for _, p := range params {
		nameW = max(nameW, len(p[0]))
		valueW = max(valueW, len(p[1]))
	}
	fmt.Fprintf(&b, " %-*s : %s\n", nameW, "ParameterName", "ParameterValue")
	fmt.Fprintf(&b, " %s\n", strings.Repeat("=", nameW+valueW+3))
	for _, p := range params {
		fmt.Fprintf(&b, " %-*s : %s\n", nameW, p[0], p[1])
	}
	b.WriteString("\n")
	return b.String()
}

// endpointParams is the endpoint's objectset, sorted by name as Asterisk sorts it.
func endpointParams(e *pjEndpoint) [][2]string {
	defaults := endpointDefaults()
	out := make([][2]string, 0, len(defaults)+1)
	for _, d := range defaults {
		v := d[1]
		if p, ok := e.params[d[0]]; ok {
			v = p
		}
		switch d[0] {
		case "allow":
			v = codecList(e.allow)
		case "aors":
			if e.hasAOR {
				v = e.name
			}
		case "auth":
			if e.inAuth != nil {
				v = e.inAuth.id
			}
		case "outbound_auth":
			if e.outAuth != nil {
				v = e.outAuth.id
			}
		case "context":
			v = e.context
		case "from_user":
			v = e.fromUser
		case "transport":
			v = e.transport
		case "identify_by":
			v = strings.Join(e.identifyBy, ",")
		}
		out = append(out, [2]string{d[0], v})
	}
	out = append(out, [2]string{"@pjsip_wizard", e.name})
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// endpointDefaults lists every endpoint option of Asterisk 20.20.1 with its default
// as `pjsip show endpoint` prints it (from the real capture, with the values the
// wizard set there replaced by the option defaults).
func endpointDefaults() [][2]string {
	return [][2]string{
		{"100rel", "yes"},
		{"accept_multiple_sdp_answers", "false"},
		{"accountcode", ""},
		{"acl", ""},
		{"aggregate_mwi", "true"},
		{"allow", "(nothing)"},
		{"allow_overlap", "true"},
		{"allow_subscribe", "true"},
		{"allow_transfer", "true"},
		{"allow_unauthenticated_options", "false"},
		{"aors", ""},
		{"asymmetric_rtp_codec", "false"},
		{"auth", ""},
		{"bind_rtp_to_media_address", "false"},
		{"bundle", "false"},
		{"call_group", ""},
		{"callerid", "<unknown>"},
		{"callerid_privacy", "allowed_not_screened"},
		{"callerid_tag", ""},
		{"codec_prefs_incoming_answer", "prefer:pending, operation:intersect, keep:all, transcode:allow"},
		{"codec_prefs_incoming_offer", "prefer:pending, operation:intersect, keep:all, transcode:allow"},
		{"codec_prefs_outgoing_answer", "prefer:pending, operation:intersect, keep:all, transcode:allow"},
		{"codec_prefs_outgoing_offer", "prefer:pending, operation:union, keep:all, transcode:allow"},
		{"connected_line_method", "invite"},
		{"contact_acl", ""},
		{"context", "default"},
		{"cos_audio", "0"},
		{"cos_video", "0"},
		{"device_state_busy_at", "0"},
		{"direct_media", "true"},
		{"direct_media_glare_mitigation", "none"},
		{"direct_media_method", "invite"},
		{"disable_direct_media_on_nat", "false"},
		{"dtls_auto_generate_cert", "No"},
		{"dtls_ca_file", ""},
		{"dtls_ca_path", ""},
		{"dtls_cert_file", ""},
		{"dtls_cipher", ""},
		{"dtls_fingerprint", "SHA-256"},
		{"dtls_private_key", ""},
		{"dtls_rekey", "0"},
		{"dtls_setup", "active"},
		{"dtls_verify", "No"},
		{"dtmf_mode", "rfc4733"},
		{"fax_detect", "false"},
		{"fax_detect_timeout", "0"},
		{"follow_early_media_fork", "true"},
		{"follow_redirect_methods", ""},
		{"force_avp", "false"},
		{"force_rport", "true"},
		{"from_domain", ""},
		{"from_user", ""},
		{"g726_non_standard", "false"},
		{"geoloc_incoming_call_profile", ""},
		{"geoloc_outgoing_call_profile", ""},
		{"ice_support", "false"},
		{"identify_by", "username,ip"},
		{"ignore_183_without_sdp", "false"},
		{"inband_progress", "false"},
		{"incoming_call_offer_pref", "local"},
		{"incoming_mwi_mailbox", ""},
		{"language", ""},
		{"mailboxes", ""},
		{"max_audio_streams", "1"},
		{"max_video_streams", "1"},
		{"media_address", ""},
		{"media_encryption", "no"},
		{"media_encryption_optimistic", "false"},
		{"media_use_received_transport", "false"},
		{"message_context", ""},
		{"moh_passthrough", "false"},
		{"moh_suggest", "default"},
		{"mwi_from_user", ""},
		{"mwi_subscribe_replaces_unsolicited", "no"},
		{"named_call_group", ""},
		{"named_pickup_group", ""},
		{"notify_early_inuse_ringing", "false"},
		{"one_touch_recording", "false"},
		{"outbound_auth", ""},
		{"outbound_proxy", ""},
		{"outgoing_call_offer_pref", "remote_merge"},
		{"overlap_context", ""},
		{"pickup_group", ""},
		{"preferred_codec_only", "false"},
		{"record_off_feature", "automixmon"},
		{"record_on_feature", "automixmon"},
		{"redirect_method", "user"},
		{"refer_blind_progress", "true"},
		{"rewrite_contact", "false"},
		{"rpid_immediate", "false"},
		{"rtcp_mux", "false"},
		{"rtp_engine", "asterisk"},
		{"rtp_ipv6", "false"},
		{"rtp_keepalive", "0"},
		{"rtp_port_end", "0"},
		{"rtp_port_start", "0"},
		{"rtp_symmetric", "false"},
		{"rtp_timeout", "0"},
		{"rtp_timeout_hold", "0"},
		{"sdp_owner", "-"},
		{"sdp_session", "Asterisk"},
		{"security_negotiation", "no"},
		{"send_aoc", "false"},
		{"send_connected_line", "yes"},
		{"send_diversion", "true"},
		{"send_history_info", "false"},
		{"send_pai", "false"},
		{"send_rpid", "false"},
		{"set_var", ""},
		{"srtp_tag_32", "false"},
		{"stir_shaken", "no"},
		{"stir_shaken_profile", ""},
		{"sub_min_expiry", "0"},
		{"subscribe_context", ""},
		{"suppress_moh_on_sendonly", "false"},
		{"suppress_q850_reason_headers", "false"},
		{"t38_bind_udptl_to_media_address", "false"},
		{"t38_udptl", "false"},
		{"t38_udptl_ec", "none"},
		{"t38_udptl_ipv6", "false"},
		{"t38_udptl_maxdatagram", "0"},
		{"t38_udptl_nat", "false"},
		{"tenantid", ""},
		{"timers", "yes"},
		{"timers_min_se", "90"},
		{"timers_sess_expires", "1800"},
		{"tone_zone", ""},
		{"tos_audio", "0"},
		{"tos_video", "0"},
		{"transport", ""},
		{"trust_connected_line", "yes"},
		{"trust_id_inbound", "false"},
		{"trust_id_outbound", "false"},
		{"use_avpf", "false"},
		{"use_ptime", "false"},
		{"user_eq_phone", "false"},
		{"voicemail_extension", ""},
		{"webrtc", "no"},
	}
}
