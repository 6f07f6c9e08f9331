package planner

import (
	"bytes"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/pbxfleet/pbxfleet/internal/asterisk"
)

// Relation is one row of the table of docs/asterisk.md#how-the-two-sides-relate for one site: what the PBX
// side says, what the OML side says, and whether the relation between them holds.
// The values are read back from the rendered files, not from the model, so the
// table checks the renderer too. It never holds a secret.
type Relation struct {
	// Name says what the row is about, e.g. "trunk name / auth user".
	Name string `json:"name"`
	// PBX is the Issabel side's options, e.g. "[omnileads]".
	PBX string `json:"pbx"`
	// Rule is how the two sides must relate: "=", "share a codec", ...
	Rule string `json:"rule"`
	// OML is the OMniLeads side's options.
	OML string `json:"oml"`
	// Holds says whether the rendered files satisfy the rule.
	Holds bool `json:"holds"`
	// Why says what is wrong when the relation does not hold.
	Why string `json:"why,omitempty"`
}

// confSection returns the options of one section of an Asterisk .conf text: each
// key with its values in order. Comments (; to the end of the line) and other
// sections are skipped; the allow-lists keep ; out of every value (docs/asterisk.md#unsafe-values).
func confSection(content []byte, section string) (map[string][]string, bool) {
	opts := make(map[string][]string)
	in, found := false, false
	for _, raw := range bytes.Split(content, []byte("\n")) {
		line, _, _ := strings.Cut(string(raw), ";")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") {
			name, _, _ := strings.Cut(line[1:], "]")
			in = name == section
			found = found || in
			continue
		}
		if !in {
			continue
		}
		var key, value string
		if k, v, ok := strings.Cut(line, "=>"); ok {
			key, value = k, v
		} else {
			key, value, _ = strings.Cut(line, "=")
		}
		key = strings.TrimSpace(key)
		opts[key] = append(opts[key], strings.TrimSpace(value))
	}
	return opts, found
}

// one returns the single value of a key, or "" when it is missing or repeated
// (a repeated option is itself a rendering fault for these keys).
func one(opts map[string][]string, key string) string {
	if v := opts[key]; len(v) == 1 {
		return v[0]
	}
	return ""
}

func fileContent(r asterisk.Rendered, name string) []byte {
	for _, f := range r.Files {
		if f.Name == name {
			return f.Content
		}
	}
	return nil
}

// relations fills the table of docs/asterisk.md#how-the-two-sides-relate for a site from the files its two
// nodes would write.
func relations(site Site, pbx, oml asterisk.Rendered) []Relation {
	t := site.Trunk
	pbxNames, omlNames := asterisk.DefaultPBXFiles(), asterisk.DefaultOMLFiles()
	peer, peerFound := confSection(fileContent(pbx, pbxNames.Peer), t.PBXTrunkName)
	wiz, wizFound := confSection(fileContent(oml, omlNames.Wizard), t.OMLTrunkName)

	var rows []Relation
	add := func(r Relation, why ...string) {
		r.Holds = len(why) == 0
		r.Why = strings.Join(why, "; ")
		rows = append(rows, r)
	}
	var why []string
	check := func(ok bool, msg string) {
		if !ok {
			why = append(why, msg)
		}
	}

	// The digest user name must be the peer's section name (chan_sip).
	why = nil
	check(peerFound, "no peer section ["+t.PBXTrunkName+"]")
	check(wizFound, "no wizard section ["+t.OMLTrunkName+"]")
	check(one(wiz, "outbound_auth/username") == t.PBXTrunkName, "outbound_auth/username is not the peer's section name")
	check(one(wiz, "endpoint/from_user") == t.PBXTrunkName, "endpoint/from_user is not the peer's section name")
	add(Relation{Name: "trunk name / OML auth user", Rule: "=",
		PBX: "[" + t.PBXTrunkName + "]",
		OML: kv(wiz, "outbound_auth/username") + " " + kv(wiz, "endpoint/from_user")}, why...)

	why = nil
	user := one(peer, "defaultuser")
	check(user != "" && user == one(peer, "fromuser"), "defaultuser and fromuser differ")
	check(user != "" && user == one(wiz, "inbound_auth/username"), "inbound_auth/username is not the peer's defaultuser")
	add(Relation{Name: "PBX user / OML inbound user", Rule: "=",
		PBX: kv(peer, "defaultuser") + " " + kv(peer, "fromuser"),
		OML: kv(wiz, "inbound_auth/username")}, why...)

	// One chan_sip secret serves both directions.
	why = nil
	for _, s := range []struct {
		opts map[string][]string
		key  string
	}{{peer, "secret"}, {wiz, "inbound_auth/password"}, {wiz, "outbound_auth/password"}} {
		check(t.Secret != "" && one(s.opts, s.key) == t.Secret, s.key+" is not the site's secret")
	}
	add(Relation{Name: "secret (both directions)", Rule: "=",
		PBX: secretKV(peer, "secret", t.Secret),
		OML: secretKV(wiz, "inbound_auth/password", t.Secret) + " " + secretKV(wiz, "outbound_auth/password", t.Secret)}, why...)

	// The peer's host:port is where OML's transport for the scenario listens.
	why = nil
	profile, _ := asterisk.ProfileByName(site.Profile)
	want := profile.Transports[t.Scenario]
	check(one(peer, "host") == t.PeerHost(), "host is not where OML runs in scenario "+string(t.Scenario))
	check(one(peer, "port") == strconv.Itoa(want.Port), "port is not the port of "+want.Name)
	check(one(wiz, "transport") == want.Name, "transport is not profile "+profile.Name+"'s for scenario "+string(t.Scenario))
	add(Relation{Name: "peer host:port / OML transport", Rule: "=",
		PBX: kv(peer, "host") + " " + kv(peer, "port"),
		OML: kv(wiz, "transport") + " (" + net.JoinHostPort(t.PeerHost(), strconv.Itoa(want.Port)) + ", profile " + profile.Name + ")"}, why...)

	why = nil
	bind := net.JoinHostPort(t.PBXAddress, strconv.Itoa(t.PBXPort))
	check(one(wiz, "remote_hosts") == bind, "remote_hosts is not the PBX's SIP address "+bind)
	add(Relation{Name: "PBX SIP address / OML remote_hosts", Rule: "=",
		PBX: "chan_sip on " + bind,
		OML: kv(wiz, "remote_hosts")}, why...)

	why = nil
	pbxCodecs := splitList(one(peer, "allow"))
	omlCodecs := splitList(one(wiz, "endpoint/allow"))
	var common []string
	for _, c := range pbxCodecs {
		if slices.Contains(omlCodecs, c) {
			common = append(common, c)
		}
	}
	check(one(peer, "disallow") == "all", "the peer does not start from disallow=all")
	check(len(common) > 0, "no codec in common")
	rule := "share a codec"
	if len(common) > 0 {
		rule = "share " + strings.Join(common, ",")
	}
	add(Relation{Name: "codecs", Rule: rule, PBX: kv(peer, "allow"), OML: kv(wiz, "endpoint/allow")}, why...)

	why = nil
	check(one(peer, "context") == "from-internal", "calls from OML must land in from-internal")
	check(one(wiz, "endpoint/context") == "from-pbx", "calls from the PBX must land in from-pbx")
	add(Relation{Name: "where calls land", Rule: "from the other side",
		PBX: kv(peer, "context"), OML: kv(wiz, "endpoint/context")}, why...)

	// Every dial string goes over this trunk: SIP/<peer section>, PJSIP/..@<wizard section>.
	why = nil
	pbxPeers := dialTargets(fileContent(pbx, pbxNames.Dialplan), false)
	omlPeers := dialTargets(fileContent(oml, omlNames.Dialplan), true)
	check(len(pbxPeers) == 1 && pbxPeers[0] == t.PBXTrunkName, "the PBX dialplan does not dial SIP/"+t.PBXTrunkName+" only")
	check(len(omlPeers) == 1 && omlPeers[0] == t.OMLTrunkName, "the OML dialplan does not dial PJSIP/...@"+t.OMLTrunkName+" only")
	add(Relation{Name: "dial strings / trunk sections", Rule: "=",
		PBX: "Dial(SIP/" + strings.Join(pbxPeers, "|") + "/...) -> [" + t.PBXTrunkName + "]",
		OML: "Dial(PJSIP/...@" + strings.Join(omlPeers, "|") + ") -> [" + t.OMLTrunkName + "]"}, why...)
	return rows
}

// kv shows one option as key=value, or key=? when it is missing or repeated.
func kv(opts map[string][]string, key string) string {
	v := one(opts, key)
	if v == "" {
		v = "?"
	}
	return key + "=" + v
}

// secretKV shows a secret option masked, or says that it is not the secret
// without ever printing what it is instead.
func secretKV(opts map[string][]string, key, secret string) string {
	switch v := one(opts, key); {
	case v == "":
		return key + "=?"
	case v == secret:
		return key + "=" + asterisk.MaskedSecret
	default:
		return key + "=(another value)"
	}
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// dialTargets returns the distinct trunk names the dial strings of a dialplan
// use, sorted: the peer of every SIP/<peer>/... (not inside PJSIP/), or the
// endpoint of every PJSIP/<number>@<endpoint>. A plain scan: a regexp with
// submatches over every dialplan was the slowest step of planning 10,000 sites.
func dialTargets(content []byte, pjsip bool) []string {
	var out []string
	text := string(content)
	for i := 0; ; {
		j := strings.Index(text[i:], "SIP/")
		if j < 0 {
			break
		}
		start := i + j
		i = start + len("SIP/")
		isPJSIP := start >= 2 && text[start-2:start] == "PJ"
		if isPJSIP != pjsip || (!isPJSIP && start > 0 && isNameChar(text[start-1])) {
			continue
		}
		rest := text[i:]
		if pjsip {
			end := strings.IndexAny(rest, "@),\n")
			if end < 0 || rest[end] != '@' {
				continue
			}
			rest = rest[end+1:]
		}
		n := 0
		for n < len(rest) && isNameChar(rest[n]) {
			n++
		}
		if !pjsip && (n == len(rest) || rest[n] != '/') {
			continue
		}
		if name := rest[:n]; name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func isNameChar(c byte) bool {
	return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
