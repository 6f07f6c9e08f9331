package lab

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// chan_sip defaults the lab relies on (chan_sip.c).
const (
	sipDefaultPort        = 5060
	sipDefaultQualifyFreq = 60 * time.Second // DEFAULT_FREQ_OK
	sipQualifyFreqNotOK   = 10 * time.Second // DEFAULT_FREQ_NOTOK: retry sooner when down
	sipDefaultMaxMS       = 2000             // qualify=yes: LAGGED above this
	sipMaxAuthTries       = 3                // MAX_AUTHTRIES
)

// sipConfig is chan_sip's running configuration: [general] plus the peers.
type sipConfig struct {
	bind        netip.AddrPort
	context     string
	allowGuest  bool
	realm       string
	qualifyFreq time.Duration
	codecs      []string
	peers       map[string]*sipPeer
}

// sipPeer is one type=peer/friend category of sip.conf.
type sipPeer struct {
	name        string
	friend      bool   // type=friend: also matched by From user on incoming calls
	host        string // as configured; "dynamic" or an IP
	dynamic     bool
	addr        netip.AddrPort // zero when dynamic or unresolvable
	secret      string
	md5secret   string
	remote      string
	defaultUser string
	fromUser    string
	context     string
	qualify     bool
	maxMS       int
	qualifyFreq time.Duration
	insecure    string
	nat         string
	description string
	language    string
	callerID    string
	dtmfMode    string
	callLimit   int
	codecs      []string
}

// sortedPeers returns the peers sorted by name, as chan_sip lists them.
func (c *sipConfig) sortedPeers() []*sipPeer {
	out := make([]*sipPeer, 0, len(c.peers))
	for _, p := range c.peers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].name) < strings.ToLower(out[j].name) })
	return out
}

// loadSIP reads sip.conf from dir. The bind address falls back to fallback when
// sip.conf binds the wildcard: the lab only ever binds loopback addresses.
func loadSIP(dir string, fallback netip.Addr) (*sipConfig, []string, error) {
	conf, err := ReadConf(dir, "sip.conf")
	if err != nil {
		return nil, nil, err
	}
	cfg := &sipConfig{
		context:     "default",
		allowGuest:  true,
		realm:       "asterisk",
		qualifyFreq: sipDefaultQualifyFreq,
		peers:       map[string]*sipPeer{},
	}
	warnings := conf.Warnings
	bindIP, bindPort := fallback, sipDefaultPort
	// chan_sip's built-in codec list, before any allow=/disallow= line.
	codecs := []string{"ulaw", "alaw", "gsm", "h263"}
	nat := "auto_force_rport"
	dtmf := "rfc2833"
	for _, g := range conf.Find("general") {
		for _, v := range g.Vars {
			switch strings.ToLower(v.Name) {
			case "bindaddr", "udpbindaddr":
				host, port := splitHostPort(v.Value)
				if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
					bindIP = ip
				}
				if port > 0 {
					bindPort = port
				}
			case "bindport":
				if p, err := strconv.Atoi(v.Value); err == nil {
					bindPort = p
				}
			case "context":
				cfg.context = v.Value
			case "allowguest":
				cfg.allowGuest = confTrue(v.Value)
			case "realm":
				cfg.realm = v.Value
			case "qualifyfreq":
				if n, err := strconv.Atoi(v.Value); err == nil && n > 0 {
					cfg.qualifyFreq = time.Duration(n) * time.Second
				}
			case "allow", "disallow":
				codecs = applyCodecs(codecs, strings.ToLower(v.Name), v.Value)
			case "nat":
				nat = v.Value
			case "dtmfmode":
				dtmf = v.Value
			}
		}
	}
	cfg.bind = netip.AddrPortFrom(bindIP, uint16(bindPort))
	cfg.codecs = codecs
	for _, s := range conf.Sections {
		if s.Template || s.Name == "general" || s.Name == "authentication" {
			continue
		}
		typ := strings.ToLower(s.Value("type", ""))
		if typ != "peer" && typ != "friend" {
			if typ == "user" {
				warnings = append(warnings, fmt.Sprintf("type=user [%s] ignored by the lab", s.Name))
			}
			continue
		}
		p := &sipPeer{
			name:        s.Name,
			friend:      typ == "friend",
			context:     cfg.context,
			qualifyFreq: cfg.qualifyFreq,
			nat:         nat,
			dtmfMode:    dtmf,
			codecs:      append([]string(nil), codecs...),
			insecure:    "no",
		}
		port := 0
		for _, v := range s.Vars {
			switch strings.ToLower(v.Name) {
			case "host":
				p.host = v.Value
			case "port":
				port, _ = strconv.Atoi(v.Value)
			case "secret":
				p.secret = v.Value
			case "md5secret":
				p.md5secret = v.Value
			case "remotesecret":
				p.remote = v.Value
			case "defaultuser", "username":
				p.defaultUser = v.Value
			case "fromuser":
				p.fromUser = v.Value
			case "context":
				p.context = v.Value
			case "qualify":
				switch {
				case confTrue(v.Value):
					p.qualify, p.maxMS = true, sipDefaultMaxMS
				case confFalse(v.Value):
					p.qualify = false
				default:
					if n, err := strconv.Atoi(v.Value); err == nil && n > 0 {
						p.qualify, p.maxMS = true, n
					}
				}
			case "qualifyfreq":
				if n, err := strconv.Atoi(v.Value); err == nil && n > 0 {
					p.qualifyFreq = time.Duration(n) * time.Second
				}
			case "insecure":
				p.insecure = v.Value
			case "nat":
				p.nat = v.Value
			case "description":
				p.description = v.Value
			case "language":
				p.language = v.Value
			case "callerid":
				p.callerID = v.Value
			case "dtmfmode":
				p.dtmfMode = v.Value
			case "call-limit":
				p.callLimit, _ = strconv.Atoi(v.Value)
			case "allow", "disallow":
				p.codecs = applyCodecs(p.codecs, strings.ToLower(v.Name), v.Value)
			}
		}
		if port == 0 {
			port = sipDefaultPort
		}
		switch {
		case p.host == "" || strings.EqualFold(p.host, "dynamic"):
			p.dynamic = true
		default:
			// The lab never resolves names (loopback only): a host that is not an IP
			// literal stays unresolved, shown as (Unspecified).
			if ip, err := netip.ParseAddr(p.host); err == nil {
				p.addr = netip.AddrPortFrom(ip, uint16(port))
			} else {
				warnings = append(warnings, fmt.Sprintf("peer %s: host %q is not an IP address; the lab does not resolve names", p.name, p.host))
			}
		}
		// A later category of the same name replaces the earlier peer, as build_peer
		// resets a found peer to its defaults before applying the new variables.
		cfg.peers[p.name] = p
	}
	return cfg, warnings, nil
}

// applyCodecs applies one allow=/disallow= line (comma-separated, "all" allowed).
func applyCodecs(list []string, op, value string) []string {
	for _, c := range strings.Split(value, ",") {
		c = strings.ToLower(strings.TrimSpace(c))
		if c == "" {
			continue
		}
		if op == "disallow" {
			if c == "all" {
				list = list[:0]
				continue
			}
			list = removeString(list, c)
			continue
		}
		if c == "all" {
			continue
		}
		if !containsString(list, c) {
			list = append(list, c)
		}
	}
	return list
}

// forceRportCell renders the Forcerport column/field from the nat= setting.
func forceRportCell(nat string) string {
	for _, opt := range strings.Split(strings.ToLower(nat), ",") {
		switch strings.TrimSpace(opt) {
		case "yes", "force_rport":
			return "Yes"
		case "auto_force_rport":
			return "Auto (No)"
		}
	}
	return "No"
}

// comediaCell renders the Comedia column/field from the nat= setting.
func comediaCell(nat string) string {
	for _, opt := range strings.Split(strings.ToLower(nat), ",") {
		switch strings.TrimSpace(opt) {
		case "yes", "comedia":
			return "Yes"
		case "auto_comedia":
			return "Auto (No)"
		}
	}
	return "No"
}

// sipPeerStatus is the Status cell of one peer given its qualify state.
func sipPeerStatus(p *sipPeer, st *qualifyState) string {
	if !p.qualify {
		return "Unmonitored"
	}
	if st == nil || st.status == qualifyPending {
		return "UNKNOWN"
	}
	if st.status == qualifyDown {
		return "UNREACHABLE"
	}
	ms := sipLastMS(st.rtt)
	if ms > p.maxMS {
		return fmt.Sprintf("LAGGED (%d ms)", ms)
	}
	return fmt.Sprintf("OK (%d ms)", ms)
}

// sipLastMS is chan_sip's lastms: whole milliseconds, never below 1 (0 means unknown).
func sipLastMS(rtt time.Duration) int {
	ms := int(rtt / time.Millisecond)
	if ms < 1 {
		ms = 1
	}
	return ms
}

// formatSIPPeers renders `sip show peers` (chan_sip _sip_show_peers, FORMAT/FORMAT2).
func formatSIPPeers(cfg *sipConfig, states map[string]*qualifyState) string {
	const format = "%-25.25s %-39.39s %-3.3s %-10.10s %-10.10s %-3.3s %-8s %-11s %-32.32s %s\n"
	var b strings.Builder
	fmt.Fprintf(&b, format, "Name/username", "Host", "Dyn", "Forcerport", "Comedia", "ACL", "Port", "Status", "Description", "")
	var monOn, monOff, unmonOn, unmonOff int
	peers := cfg.sortedPeers()
	for _, p := range peers {
		name := p.name
		if p.defaultUser != "" {
			name = p.name + "/" + p.defaultUser
		}
		host, port := "(Unspecified)", "0"
		if p.addr.IsValid() {
			host, port = p.addr.Addr().String(), strconv.Itoa(int(p.addr.Port()))
		}
		dyn := "   "
		if p.dynamic {
			dyn = " D "
		}
		status := sipPeerStatus(p, states[p.name])
		switch {
		case !p.qualify && p.addr.IsValid():
			unmonOn++
		case !p.qualify:
			unmonOff++
		case strings.HasPrefix(status, "OK") || strings.HasPrefix(status, "LAGGED"):
			monOn++
		default:
			monOff++
		}
		fmt.Fprintf(&b, format, name, host, dyn, forceRportCell(p.nat), comediaCell(p.nat), "   ", port, status, p.description, "")
	}
	fmt.Fprintf(&b, "%d sip peers [Monitored: %d online, %d offline Unmonitored: %d online, %d offline]\n",
		len(peers), monOn, monOff, unmonOn, unmonOff)
	return b.String()
}

// formatSIPPeer renders `sip show peer <name>` (chan_sip _sip_show_peer), the field
// list of the Asterisk 20.20.1 capture with values from the configuration.
func formatSIPPeer(cfg *sipConfig, name string, states map[string]*qualifyState) string {
	p, ok := cfg.peers[name]
	if !ok {
		return fmt.Sprintf("Peer %s not found.\n\n", name)
	}
	set := func(v string) string {
		if v == "" {
			return "<Not set>"
		}
		return "<Set>"
	}
	yesNo := func(b bool) string {
		if b {
			return "Yes"
		}
		return "No"
	}
	callerID := `"" <>`
	if p.callerID != "" {
		callerID = p.callerID
	}
	insecure := p.insecure
	if insecure == "" || confFalse(insecure) {
		insecure = "no"
	}
	toHost, addr := "", "(null)"
	if !p.dynamic {
		toHost = p.host
	}
	if p.addr.IsValid() {
		addr = p.addr.String()
	}
	lines := [][2]string{
		{"  * Name       ", p.name},
		{"  Description  ", p.description},
		{"  Secret       ", set(p.secret)},
		{"  MD5Secret    ", set(p.md5secret)},
		{"  Remote Secret", set(p.remote)},
		{"  Context      ", p.context},
		{"  Record On feature ", "automon"},
		{"  Record Off feature ", "automon"},
		{"  Subscr.Cont. ", "<Not set>"},
		{"  Language     ", p.language},
		{"  Tonezone     ", "<Not set>"},
		{"  AMA flags    ", "Unknown"},
		{"  Transfer mode", "open"},
		{"  CallingPres  ", "Presentation Allowed, Not Screened"},
		{"  FromUser     ", p.fromUser},
		{"  Callgroup    ", ""},
		{"  Pickupgroup  ", ""},
		{"  Named Callgr ", ""},
		{"  Nam. Pickupgr", ""},
		{"  MOH Suggest  ", ""},
		{"  Mailbox      ", ""},
		{"  VM Extension ", "asterisk"},
		{"  LastMsgsSent ", "0/0"},
		{"  Call limit   ", strconv.Itoa(p.callLimit)},
		{"  Max forwards ", "0"},
		{"  Dynamic      ", yesNo(p.dynamic)},
		{"  Callerid     ", callerID},
		{"  MaxCallBR    ", "384 kbps"},
		{"  Expire       ", "-1"},
		{"  Insecure     ", insecure},
		{"  Force rport  ", forceRportCell(p.nat)},
		{"  Symmetric RTP", comediaCell(p.nat)},
		{"  ACL          ", "No"},
		{"  ContactACL   ", "No"},
		{"  DirectMedACL ", "No"},
		{"  T.38 support ", "No"},
		{"  T.38 EC mode ", "Unknown"},
		{"  T.38 MaxDtgrm", "4294967295"},
		{"  DirectMedia  ", "Yes"},
		{"  PromiscRedir ", "No"},
		{"  User=Phone   ", "No"},
		{"  Video Support", "No"},
		{"  Text Support ", "No"},
		{"  Ign SDP ver  ", "No"},
		{"  Trust RPID   ", "No"},
		{"  Send RPID    ", "No"},
		{"  Path support ", "No"},
		{"  Path         ", "N/A"},
		{"  TrustIDOutbnd", "Legacy"},
		{"  Subscriptions", "Yes"},
		{"  Overlap dial ", "Yes"},
		{"  DTMFmode     ", p.dtmfMode},
		{"  Timer T1     ", "500"},
		{"  Timer B      ", "32000"},
		{"  ToHost       ", toHost},
		{"  Addr->IP     ", addr},
		{"  Defaddr->IP  ", "(null)"},
		{"  Prim.Transp. ", "UDP"},
		{"  Allowed.Trsp ", "UDP"},
		{"  Def. Username", p.defaultUser},
		{"  SIP Options  ", "(none)"},
		{"  Codecs       ", codecList(p.codecs)},
		{"  Auto-Framing ", "No"},
		{"  Status       ", sipPeerStatus(p, states[p.name])},
		{"  Useragent    ", ""},
		{"  Reg. Contact ", ""},
		{"  Qualify Freq ", fmt.Sprintf("%d ms", p.qualifyFreq.Milliseconds())},
		{"  Keepalive    ", "0 ms"},
		{"  Sess-Timers  ", "Accept"},
		{"  Sess-Refresh ", "uas"},
		{"  Sess-Expires ", "1800 secs"},
		{"  Min-Sess     ", "90 secs"},
		{"  RTP Engine   ", "asterisk"},
		{"  Parkinglot   ", ""},
		{"  Use Reason   ", "No"},
		{"  Encryption   ", "No"},
		{"  RTCP Mux     ", "No"},
	}
	var b strings.Builder
	b.WriteString("\n\n")
	for _, l := range lines {
		b.WriteString(l[0])
		b.WriteString(": ")
		b.WriteString(l[1])
		b.WriteString("\n")
	}
	b.WriteString("\n")
	return b.String()
}

// codecList renders a codec preference list the way Asterisk prints capabilities.
func codecList(codecs []string) string {
	if len(codecs) == 0 {
		return "(nothing)"
	}
	return "(" + strings.Join(codecs, "|") + ")"
}

// splitHostPort splits "host[:port]"; port is 0 when absent or invalid.
func splitHostPort(s string) (string, int) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().String(), int(ap.Port())
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 && !strings.Contains(s[:i], ":") {
		p, err := strconv.Atoi(s[i+1:])
		if err != nil {
			return s[:i], 0
		}
		return s[:i], p
	}
	return s, 0
}

// confTrue is ast_true: yes, true, y, t, 1, on.
func confTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "y", "t", "1", "on":
		return true
	}
	return false
}

// confFalse is ast_false: no, false, n, f, 0, off.
func confFalse(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "no", "false", "n", "f", "0", "off":
		return true
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func removeString(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
