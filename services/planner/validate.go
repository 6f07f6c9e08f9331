package planner

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
	"github.com/pbxfleet/pbxfleet/internal/secretpolicy"
	"github.com/pbxfleet/pbxfleet/internal/textclip"
	"github.com/pbxfleet/pbxfleet/internal/trunkmodel"
)

// Built-in defaults (Settings, PBXSpec, OMLSpec).
const (
	DefaultScenario         = asterisk.ScenarioLAN
	DefaultPBXPort          = 5060
	DefaultPBXTrunkName     = "omnileads"
	DefaultPBXUser          = "issabel"
	DefaultOMLTrunkName     = "issabel"
	DefaultDeployment       = "host"
	DefaultContainer        = "oml-asterisk-prodenv"
	DefaultProfile          = "1.x"
	DefaultQualifyFrequency = 60
	DefaultAgentRouting     = asterisk.AgentRoutingPattern
	// DefaultAgentPattern matches what OMniLeads' [from-pbx] takes for an agent
	// call, SIP number then id (docs/asterisk.md#calls-from-the-pbx-to-omnileads): 10061 for agent 1 on SIP 1006.
	// (_1XXXX. would need six digits and miss agents 1 to 9.)
	DefaultAgentPattern = asterisk.OMLAgentPattern
	DefaultProbeNumber  = "99999"
)

// DefaultPBXCodecs and DefaultOMLCodecs return the built-in codec lists of the
// seed (docs/asterisk.md#scenarios-and-ports).
func DefaultPBXCodecs() []string { return []string{"alaw"} }

// DefaultOMLCodecs returns the built-in OML codec list, alaw then ulaw.
func DefaultOMLCodecs() []string { return []string{"alaw", "ulaw"} }

// OML deployments (OMLSpec.Deployment).
const (
	DeploymentHost   = "host"
	DeploymentDocker = "docker"
	DeploymentPodman = "podman"
)

// maxQualifyFrequency is res_pjsip's upper bound for aor/qualify_frequency.
const maxQualifyFrequency = 86400

var (
	// containerRE is Docker's and Podman's rule for container names.
	containerRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	// sipNumberRE: OML's [from-pbx] takes the first four digits of an agent call
	// as the SIP number and the rest as the agent id (_1XXX., ${EXTEN:4}).
	sipNumberRE = regexp.MustCompile(`^1[0-9]{3}$`)
	// agentIDRE: OML agent ids are positive integers; a leading zero would change
	// the id OML reads from ${EXTEN:4}.
	agentIDRE = regexp.MustCompile(`^[1-9][0-9]{0,15}$`)
)

// Problem is one thing wrong with a fleet file, or worth a warning.
type Problem struct {
	// Path names the value, e.g. sites[bsas-1].dids[2].number or
	// defaults.pbx.port; empty when the problem is with the file as a whole.
	Path string `json:"path,omitempty"`
	// Line is the line of the value in the fleet file, 0 when unknown.
	Line int `json:"line,omitempty"`
	// Msg says what is wrong and, where it helps, what to write instead. It never
	// contains a secret.
	Msg string `json:"message"`

	at   path   // where the value is, for the line lookup
	site string // the site the problem is about, "" for the fleet as a whole
}

// String returns "path: message", or the message alone when there is no path.
func (p Problem) String() string {
	if p.Path == "" {
		return oneLine(p.Msg)
	}
	return oneLine(p.Path + ": " + p.Msg)
}

// oneLine escapes what could break a problem's line: a newline in a value
// echoed unquoted must not start a line of its own (a forged "FILE:LINE:" in
// a CI log), nor a carriage return or another control character rewrite it.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			fmt.Fprintf(&b, `\x%02x`, r&0xff)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ValidationError lists every problem that makes a fleet file unusable. It
// matches ErrInvalidSpec with errors.Is.
type ValidationError struct {
	// Problems are in file order.
	Problems []Problem
}

// Error returns the problems on one line, separated by "; ".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	noun := "problems"
	if len(parts) == 1 {
		noun = "problem"
	}
	return fmt.Sprintf("%v: %d %s: %s", ErrInvalidSpec, len(parts), noun, strings.Join(parts, "; "))
}

// Is reports whether target is ErrInvalidSpec.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidSpec }

// path locates a value in the fleet file: mapping keys (string), sequence
// indexes (int) and sites (siteRef), which print as their id.
type path []any

// siteRef is a site in the sites sequence; it prints as the site id, or as #index
// when the id is unusable.
type siteRef struct {
	index int
	label string
}

// String renders the path as people read it: defaults.pbx.port, sites[x].dids[0].
func (p path) String() string {
	var b strings.Builder
	for _, e := range p {
		switch e := e.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e)
		case int:
			b.WriteString("[" + strconv.Itoa(e) + "]")
		case siteRef:
			b.WriteString("[" + e.label + "]")
		}
	}
	return b.String()
}

// with returns a new path with elems appended; p is never modified.
func (p path) with(elems ...any) path {
	out := make(path, 0, len(p)+len(elems))
	return append(append(out, p...), elems...)
}

// origin says where a setting's value was written.
type origin int

const (
	fromBuiltin origin = iota
	fromDefaults
	fromSite
)

// setting is a resolved value and where it came from.
type setting[T any] struct {
	v      T
	origin origin
	keys   []any // under defaults or the site, e.g. {"pbx", "port"}
	ok     bool  // the value passed its own check (a built-in always does)
}

func pick[T any](site, def *T, builtin T, keys ...any) setting[T] {
	switch {
	case site != nil:
		return setting[T]{v: *site, origin: fromSite, keys: keys}
	case def != nil:
		return setting[T]{v: *def, origin: fromDefaults, keys: keys}
	}
	return setting[T]{v: builtin, origin: fromBuiltin, keys: keys, ok: true}
}

func pickList(site, def, builtin []string, keys ...any) setting[[]string] {
	switch {
	case site != nil:
		return setting[[]string]{v: site, origin: fromSite, keys: keys}
	case def != nil:
		return setting[[]string]{v: def, origin: fromDefaults, keys: keys}
	}
	return setting[[]string]{v: builtin, origin: fromBuiltin, keys: keys, ok: true}
}

// check records whether the value passes fn. The value was already reported
// where it was written (checkSettings), so nothing is reported here.
func (s setting[T]) check(fn func(T) error) setting[T] {
	if s.origin != fromBuiltin {
		s.ok = fn(s.v) == nil
	}
	return s
}

// set reports whether the operator wrote the value (in the site or the defaults).
func (s setting[T]) set() bool { return s.origin != fromBuiltin }

// validator walks a decoded File, collects every problem and warning, and
// resolves the sites.
type validator struct {
	f        *File
	baseDir  string
	opts     Options
	problems []Problem
	warnings []Problem
	secrets  map[string]*secretResult
	patterns map[string]asterisk.Pattern
}

func newValidator(f *File, baseDir string, opts Options) *validator {
	return &validator{
		f:        f,
		baseDir:  baseDir,
		opts:     opts,
		secrets:  make(map[string]*secretResult),
		patterns: make(map[string]asterisk.Pattern),
	}
}

func (v *validator) errorf(at path, site, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: at.String(), Msg: fmt.Sprintf(format, args...), at: at, site: site})
}

func (v *validator) warnf(at path, site, format string, args ...any) {
	v.warnings = append(v.warnings, Problem{Path: at.String(), Msg: fmt.Sprintf(format, args...), at: at, site: site})
}

// report records err, if any, as a problem at the path.
func (v *validator) report(at path, site string, err error) bool {
	if err != nil {
		v.errorf(at, site, "%s", err)
		return false
	}
	return true
}

// run validates the whole file and returns the resolved sites. The sites are
// only meaningful when v.problems is empty.
func (v *validator) run() []Site {
	switch v.f.Version {
	case SpecVersion:
	case 0:
		v.errorf(path{"version"}, "", "required: write version: %d at the top of the file", SpecVersion)
	default:
		v.errorf(path{"version"}, "", "this pbxfleet reads version %d, not %d", SpecVersion, v.f.Version)
	}
	v.checkSettings(&v.f.Defaults, path{"defaults"}, "")
	if len(v.f.Sites) == 0 {
		v.errorf(path{"sites"}, "", "the fleet has no sites")
		return nil
	}

	sites := make([]Site, 0, len(v.f.Sites))
	paths := make([]path, 0, len(v.f.Sites))
	firstIndex := make(map[string]int, len(v.f.Sites))
	for i := range v.f.Sites {
		s := &v.f.Sites[i]
		label := s.ID
		idErr := events.ValidateSite(s.ID)
		if idErr != nil {
			label = "#" + strconv.Itoa(i)
		}
		sp := path{"sites", siteRef{index: i, label: label}}
		switch first, dup := firstIndex[s.ID]; {
		case idErr != nil && s.ID == "":
			v.errorf(sp.with("id"), s.ID, "required: a site id of 1 to 63 of a-z 0-9 _ -")
		case idErr != nil:
			v.errorf(sp.with("id"), s.ID, "%s", idErr)
		case dup:
			v.errorf(sp.with("id"), s.ID, "duplicate site id: sites[#%d] has it too", first)
		default:
			firstIndex[s.ID] = i
		}
		v.checkSettings(&s.Settings, sp, s.ID)
		sites = append(sites, v.resolveSite(s, sp))
		if firstIndex[s.ID] == i && idErr == nil {
			paths = append(paths, sp)
		} else {
			paths = append(paths, nil) // its id is refused already: not compared
		}
	}
	v.checkSharedHosts(sites, paths)
	v.warnSharedSecrets(sites)
	return sites
}

// checkSettings checks every value a Settings block sets, where it is written, so
// a bad default is reported once however many sites inherit it.
func (v *validator) checkSettings(s *Settings, base path, site string) {
	isDefaults := site == "" && len(base) == 1
	str := func(p *string, fn func(string) error, keys ...any) {
		if p != nil {
			v.report(base.with(keys...), site, fn(*p))
		}
	}
	str(s.Scenario, checkScenario, "scenario")
	if isDefaults && s.PBX.Address != nil {
		v.errorf(base.with("pbx", "address"), site, "addresses are per site: set sites[].pbx.address")
	} else {
		str(s.PBX.Address, checkAddress, "pbx", "address")
	}
	if s.PBX.Port != nil {
		v.report(base.with("pbx", "port"), site, asterisk.CheckPort(*s.PBX.Port))
	}
	str(s.PBX.TrunkName, asterisk.CheckName, "pbx", "trunk_name")
	str(s.PBX.User, asterisk.CheckName, "pbx", "user")
	if s.PBX.Codecs != nil {
		v.report(base.with("pbx", "codecs"), site, checkCodecs(s.PBX.Codecs))
	}

	if isDefaults && s.OML.Address != nil {
		v.errorf(base.with("oml", "address"), site, "addresses are per site: set sites[].oml.address")
	} else {
		str(s.OML.Address, checkAddress, "oml", "address")
	}
	str(s.OML.Deployment, checkDeployment, "oml", "deployment")
	str(s.OML.Container, checkContainer, "oml", "container")
	str(s.OML.Profile, checkProfile, "oml", "profile")
	str(s.OML.TrunkName, asterisk.CheckName, "oml", "trunk_name")
	str(s.OML.User, asterisk.CheckName, "oml", "user")
	if s.OML.Codecs != nil {
		v.report(base.with("oml", "codecs"), site, checkCodecs(s.OML.Codecs))
	}
	if s.OML.QualifyFrequency != nil {
		v.report(base.with("oml", "qualify_frequency"), site, checkQualify(*s.OML.QualifyFrequency))
	}
	if s.OML.OutboundRoute != nil {
		v.report(base.with("oml", "outbound_route"), site, asterisk.CheckOMLRoute(resolveRoute(s.OML.OutboundRoute, nil, "pbxfleet_x")))
	}
	str(s.OML.InboundCampaign, func(c string) error {
		return asterisk.CheckOMLRoute(asterisk.OMLRoute{Name: "x", RingTime: 1, DialOptions: "T", Patterns: []asterisk.DialPattern{{Pattern: "X."}}, InboundCampaign: c})
	}, "oml", "inbound_campaign")
	str(s.AgentRouting, checkRouting, "agent_routing")
	str(s.AgentPattern, v.checkPattern, "agent_pattern")
	if s.ProbeNumber != nil {
		v.report(base.with("probe_number"), site, checkNumber(*s.ProbeNumber))
	}
}

// resolvedSite holds a site's settings after the defaults are applied.
type resolvedSite struct {
	id                                           string
	sp                                           path
	scenario                                     setting[string]
	pbxAddr, pbxTrunk, pbxUser                   setting[string]
	pbxPort                                      setting[int]
	pbxCodecs, omlCodecs                         setting[[]string]
	omlAddr, deployment, container, profile      setting[string]
	omlTrunk, omlUser, secretRef, routing, agPat setting[string]
	qualify                                      setting[int]
	probe                                        setting[Number]
}

// at returns where a setting is written: under the site, or under defaults.
func (r *resolvedSite) at(keys []any, o origin) path {
	if o == fromDefaults {
		return path{"defaults"}.with(keys...)
	}
	return r.sp.with(keys...)
}

// relationf reports a problem of the site that involves a setting: at the
// setting's place in the site, saying where the value came from when the site
// inherited it, so the operator knows which line to change.
func relationf[T any](v *validator, r *resolvedSite, s setting[T], format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	switch s.origin {
	case fromDefaults:
		msg += " (set in " + path{"defaults"}.with(s.keys...).String() + ")"
	case fromBuiltin:
		msg += " (the built-in default)"
	}
	v.problems = append(v.problems, Problem{Path: r.sp.with(s.keys...).String(), Msg: msg, at: r.at(s.keys, s.origin), site: r.id})
}

// resolveSite applies the defaults to a site and checks it.
func (v *validator) resolveSite(s *SiteSpec, sp path) Site {
	d := &v.f.Defaults
	r := &resolvedSite{id: s.ID, sp: sp}
	r.scenario = pick(s.Scenario, d.Scenario, string(DefaultScenario), "scenario").check(checkScenario)
	r.pbxAddr = pick(s.PBX.Address, nil, "", "pbx", "address").check(checkAddress)
	r.pbxPort = pick(s.PBX.Port, d.PBX.Port, DefaultPBXPort, "pbx", "port").check(asterisk.CheckPort)
	r.pbxTrunk = pick(s.PBX.TrunkName, d.PBX.TrunkName, DefaultPBXTrunkName, "pbx", "trunk_name").check(asterisk.CheckName)
	r.pbxUser = pick(s.PBX.User, d.PBX.User, DefaultPBXUser, "pbx", "user").check(asterisk.CheckName)
	r.pbxCodecs = pickList(s.PBX.Codecs, d.PBX.Codecs, DefaultPBXCodecs(), "pbx", "codecs").check(checkCodecs)
	r.omlAddr = pick(s.OML.Address, nil, "", "oml", "address").check(checkAddress)
	defaultDeployment := DefaultDeployment
	if r.scenario.v == string(asterisk.ScenarioDocker) {
		defaultDeployment = DeploymentDocker
	}
	r.deployment = pick(s.OML.Deployment, d.OML.Deployment, defaultDeployment, "oml", "deployment").check(checkDeployment)
	r.container = pick(s.OML.Container, d.OML.Container, DefaultContainer, "oml", "container").check(checkContainer)
	r.profile = pick(s.OML.Profile, d.OML.Profile, DefaultProfile, "oml", "profile").check(checkProfile)
	r.omlTrunk = pick(s.OML.TrunkName, d.OML.TrunkName, DefaultOMLTrunkName, "oml", "trunk_name").check(asterisk.CheckName)
	r.omlUser = pick(s.OML.User, d.OML.User, r.pbxTrunk.v, "oml", "user").check(asterisk.CheckName)
	r.omlCodecs = pickList(s.OML.Codecs, d.OML.Codecs, DefaultOMLCodecs(), "oml", "codecs").check(checkCodecs)
	r.qualify = pick(s.OML.QualifyFrequency, d.OML.QualifyFrequency, DefaultQualifyFrequency, "oml", "qualify_frequency").check(checkQualify)
	r.secretRef = pick(s.Secret, d.Secret, "", "secret")
	r.routing = pick(s.AgentRouting, d.AgentRouting, string(DefaultAgentRouting), "agent_routing").check(checkRouting)
	r.agPat = pick(s.AgentPattern, d.AgentPattern, DefaultAgentPattern, "agent_pattern").check(v.checkPattern)
	r.probe = pick(s.ProbeNumber, d.ProbeNumber, Number(DefaultProbeNumber), "probe_number").check(checkNumber)

	t := asterisk.Trunk{
		Site:             s.ID,
		Scenario:         asterisk.Scenario(r.scenario.v),
		PBXAddress:       r.pbxAddr.v,
		PBXPort:          r.pbxPort.v,
		OMLAddress:       r.omlAddr.v,
		PBXTrunkName:     r.pbxTrunk.v,
		OMLTrunkName:     r.omlTrunk.v,
		PBXUser:          r.pbxUser.v,
		OMLUser:          r.omlUser.v,
		PBXCodecs:        slices.Clone(r.pbxCodecs.v),
		OMLCodecs:        slices.Clone(r.omlCodecs.v),
		QualifyFrequency: r.qualify.v,
		AgentRouting:     asterisk.AgentRouting(r.routing.v),
		AgentPattern:     r.agPat.v,
		ProbeNumber:      string(r.probe.v),
	}
	if s.OML.OutboundRoute != nil || d.OML.OutboundRoute != nil || s.OML.InboundCampaign != nil || d.OML.InboundCampaign != nil {
		rs := s.OML.OutboundRoute
		if rs == nil {
			rs = d.OML.OutboundRoute
		}
		campaign := s.OML.InboundCampaign
		if campaign == nil {
			campaign = d.OML.InboundCampaign
		}
		route := resolveRoute(rs, campaign, trunkmodel.DefaultOMLRouteName(r.omlTrunk.v))
		t.OMLRoute = &route
	}
	v.checkAddresses(r, &t)
	v.checkRelations(r, &t)
	secret := v.resolveSecret(r)
	t.Secret = secret.value
	v.checkNumbers(r, s, &t)

	// Safety net: the renderer's own check must agree with this validation, so a
	// valid spec can never fail to render on a node. A failure here is a gap in
	// this file's checks; it is still reported by site rather than published. It
	// runs only while the spec is otherwise clean, so it never repeats a problem.
	if len(v.problems) == 0 {
		if err := asterisk.CheckTrunk(t); err != nil {
			v.errorf(sp, s.ID, "the renderer refuses this trunk: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
	}
	return Site{
		ID:           s.ID,
		Trunk:        t,
		Deployment:   r.deployment.v,
		Container:    r.container.v,
		Profile:      r.profile.v,
		SecretSource: secret.source,
	}
}

// resolveRoute is the outbound route rs asks for, each unset field at its
// default (DefaultOMLRoute), with the inbound campaign.
func resolveRoute(rs *RouteSpec, campaign *string, defaultName string) asterisk.OMLRoute {
	r := asterisk.OMLRoute{Name: defaultName, RingTime: trunkmodel.DefaultOMLRingTime, DialOptions: trunkmodel.DefaultOMLDialOptions}
	if rs != nil {
		if rs.Name != nil {
			r.Name = *rs.Name
		}
		if rs.RingTime != nil {
			r.RingTime = *rs.RingTime
		}
		if rs.DialOptions != nil {
			r.DialOptions = *rs.DialOptions
		}
		for _, p := range rs.Patterns {
			r.Patterns = append(r.Patterns, asterisk.DialPattern{Prefix: string(p.Prefix), Prepend: string(p.Prepend), Pattern: p.Pattern})
		}
	}
	if len(r.Patterns) == 0 {
		r.Patterns = []asterisk.DialPattern{{Pattern: trunkmodel.DefaultOMLPattern}}
	}
	if campaign != nil {
		r.InboundCampaign = *campaign
	}
	return r
}

// checkAddresses fills the addresses and the transport of t per scenario and
// profile (docs/asterisk.md#scenarios-and-ports).
func (v *validator) checkAddresses(r *resolvedSite, t *asterisk.Trunk) {
	if !r.pbxAddr.set() {
		v.errorf(r.sp.with("pbx", "address"), r.id, "required: the Issabel host's IP address or DNS name")
	}
	docker := t.Scenario == asterisk.ScenarioDocker
	switch {
	case docker && !r.omlAddr.set():
		// OML runs in Docker on the PBX host itself (docs/asterisk.md#scenarios-and-ports).
		t.OMLAddress = t.PBXAddress
	case docker && r.pbxAddr.ok && r.omlAddr.ok && !sameHost(t.OMLAddress, t.PBXAddress):
		v.errorf(r.sp.with("oml", "address"), r.id,
			"scenario docker runs OMniLeads on the PBX host: leave oml.address out or set it to the PBX address %s", t.PBXAddress)
	case !docker && !r.omlAddr.set() && r.scenario.ok:
		v.errorf(r.sp.with("oml", "address"), r.id, "required in scenario %s: the OMniLeads host's IP address or DNS name", t.Scenario)
	case !docker && r.pbxAddr.ok && r.omlAddr.ok && sameHost(t.OMLAddress, t.PBXAddress):
		v.errorf(r.sp.with("oml", "address"), r.id,
			"scenario %s runs OMniLeads on a host of its own: its address is the PBX's (%s); OMniLeads on the PBX host is scenario docker", t.Scenario, t.PBXAddress)
	}
	if docker && r.deployment.ok && r.deployment.v == DeploymentHost {
		relationf(v, r, r.deployment, "scenario docker runs OMniLeads in a container: use docker or podman")
	}

	if !r.scenario.ok || !r.profile.ok {
		return
	}
	profile, _ := asterisk.ProfileByName(r.profile.v)
	tr, ok := profile.Transports[t.Scenario]
	if !ok {
		relationf(v, r, r.profile, "profile %s has no transport for scenario %s", profile.Name, t.Scenario)
		return
	}
	t.OMLTransport, t.OMLPort = tr.Name, tr.Port
	// The peer's host=:port= is where OML's transport listens; when that is the
	// PBX host itself, it must not be chan_sip's own port.
	if r.pbxAddr.ok && r.pbxPort.ok && sameHost(t.PeerHost(), t.PBXAddress) && t.OMLPort == t.PBXPort {
		relationf(v, r, r.profile, "profile %s puts OML's %s on port %d of the PBX host %s, where chan_sip listens (pbx.port %d)",
			profile.Name, tr.Name, tr.Port, t.PBXAddress, t.PBXPort)
	}
}

// sameHost compares two addresses, IPs by value (10.0.0.1 and ::ffff:10.0.0.1
// are one host) and names case-insensitively.
func sameHost(a, b string) bool {
	ia, ib := net.ParseIP(a), net.ParseIP(b)
	if ia != nil && ib != nil {
		return ia.Equal(ib)
	}
	return strings.EqualFold(a, b)
}

// checkSharedHosts refuses a host that two sites name: each site is one PBX
// and one OMniLeads, each host runs one agent per side, and two sites on one
// host would write the same managed files (the second rollout undoing the
// first). A docker site's OMniLeads address is its PBX's and counts once.
func (v *validator) checkSharedHosts(sites []Site, paths []path) {
	type use struct {
		site int
		side string
	}
	first := map[string]use{}
	for i, s := range sites {
		if paths[i] == nil {
			continue
		}
		sides := []struct{ side, addr string }{{"pbx", s.Trunk.PBXAddress}}
		if s.Trunk.Scenario != asterisk.ScenarioDocker {
			sides = append(sides, struct{ side, addr string }{"oml", s.Trunk.OMLAddress})
		}
		for _, sd := range sides {
			if sd.addr == "" {
				continue
			}
			key := strings.ToLower(sd.addr)
			if ip := net.ParseIP(sd.addr); ip != nil {
				key = ip.String()
			}
			u, seen := first[key]
			if !seen {
				first[key] = use{i, sd.side}
				continue
			}
			if u.site == i {
				continue // the site's own pbx = oml, reported by checkAddresses
			}
			v.errorf(paths[i].with(sd.side, "address"), sites[i].ID, "%s is also %s: two sites cannot share a host",
				sd.addr, paths[u.site].with(u.side, "address"))
		}
	}
}

// checkRelations checks the cross-side relations of docs/asterisk.md#how-the-two-sides-relate that depend on
// the operator's values; the others hold by construction of the Trunk model.
func (v *validator) checkRelations(r *resolvedSite, t *asterisk.Trunk) {
	// chan_sip takes the digest user name for the peer's section name, so OML must
	// authenticate as the PBX trunk name (docs/asterisk.md#how-the-two-sides-relate).
	if r.omlUser.set() && r.omlUser.ok && r.pbxTrunk.ok && r.omlUser.v != r.pbxTrunk.v {
		relationf(v, r, r.omlUser, "must equal pbx.trunk_name %q: chan_sip takes OML's auth user for the peer's section name (leave oml.user out)",
			r.pbxTrunk.v)
	}
	if r.pbxCodecs.ok && r.omlCodecs.ok && !intersects(r.pbxCodecs.v, r.omlCodecs.v) {
		relationf(v, r, r.omlCodecs, "no codec in common with pbx.codecs [%s]: no call could be set up",
			strings.Join(r.pbxCodecs.v, ", "))
	}
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// resolveSecret reads the site's secret; a reference inherited from defaults is
// read, and its problems reported, once.
func (v *validator) resolveSecret(r *resolvedSite) *secretResult {
	s := r.secretRef
	if !s.set() {
		v.errorf(r.sp.with("secret"), r.id, "required: set secret here or in defaults.secret (env:NAME or file:PATH)")
		return &secretResult{}
	}
	res, ok := v.secrets[s.v]
	if !ok {
		res = resolveSecret(s.v, v.baseDir, v.opts)
		v.secrets[s.v] = res
	}
	if s.origin == fromDefaults && res.reported {
		return res
	}
	at := r.at(s.keys, s.origin)
	site := r.id
	if s.origin == fromDefaults {
		site = ""
		res.reported = true
	}
	if res.err != nil {
		v.errorf(at, site, "%s", res.err)
		return res
	}
	if res.weak != "" {
		if v.opts.AcceptWeakSecrets {
			v.warnf(at, site, "weak secret accepted for a lab: %s", res.weak)
		} else {
			v.errorf(at, site, "weak secret: %s; use %d or more random characters (accept-weak-secrets allows it in a lab)", res.weak, secretpolicy.MinLen)
		}
	}
	if res.source == "literal" {
		v.warnf(at, site, "the secret is written in the fleet file: use env:NAME or file:PATH outside a lab")
	}
	return res
}

// warnSharedSecrets warns when one secret opens the trunks of several sites.
func (v *validator) warnSharedSecrets(sites []Site) {
	bySecret := make(map[string][]int)
	var order []string
	for i, s := range sites {
		if s.Trunk.Secret == "" {
			continue
		}
		if _, seen := bySecret[s.Trunk.Secret]; !seen {
			order = append(order, s.Trunk.Secret)
		}
		bySecret[s.Trunk.Secret] = append(bySecret[s.Trunk.Secret], i)
	}
	for _, secret := range order {
		idx := bySecret[secret]
		if len(idx) < 2 {
			continue
		}
		first := &v.f.Sites[idx[0]]
		at := path{"sites", siteRef{index: idx[0], label: sites[idx[0]].ID}, "secret"}
		if first.Secret == nil {
			at = path{"defaults", "secret"}
		}
		ids := make([]string, 0, 4)
		for _, i := range idx[:min(len(idx), 3)] {
			ids = append(ids, sites[i].ID)
		}
		more := ""
		if len(idx) > 3 {
			more = fmt.Sprintf(" and %d more", len(idx)-3)
		}
		v.warnf(at, "", "one secret serves %d sites (%s%s): a leak at one site opens the trunks of the others",
			len(idx), strings.Join(ids, ", "), more)
	}
}

// checkNumbers checks the DIDs, the agents and the probe number of a site and
// fills them into t: no number that two routes claim, and a probe that rings no
// one (docs/asterisk.md#calls-from-the-pbx-to-omnileads, #the-probe-call).
// The rules are methods of numberPlan, in the order they run: each reads what
// the ones before it established.
func (v *validator) checkNumbers(r *resolvedSite, s *SiteSpec, t *asterisk.Trunk) {
	n := &numberPlan{
		v: v, r: r, s: s, t: t,
		perAgent:       r.routing.ok && r.routing.v == string(asterisk.AgentRoutingPerAgent),
		patternRouting: r.routing.ok && r.routing.v == string(asterisk.AgentRoutingPattern),
		dialOwner:      make(map[string]int, len(s.Agents)),
		agentOK:        make([]bool, len(s.Agents)),
		didOwner:       make(map[string]int, len(s.DIDs)),
		didOK:          make([]bool, len(s.DIDs)),
		local:          make(map[string]string, len(s.DIDs)+len(s.Agents)),
	}
	n.agents()
	n.dids()
	n.didClaims()
	n.agentClaims()
	n.patternCoverage()
	n.probeGuard()
}

// numberPlan is one site's numbers while they are checked: who owns each
// agent dial number, each DID and each local number of the PBX dialplan.
type numberPlan struct {
	v *validator
	r *resolvedSite
	s *SiteSpec
	t *asterisk.Trunk
	// perAgent and patternRouting say how the PBX routes to the agents.
	perAgent, patternRouting bool
	// dialOwner maps an agent's dial number (SIP number + id) to its index;
	// agentOK says which agents passed their own checks.
	dialOwner map[string]int
	agentOK   []bool
	// didOwner maps a DID to its index; didOK says which DIDs passed.
	didOwner map[string]int
	didOK    []bool
	// local maps each number the PBX dialplan declares to who declares it.
	local map[string]string
}

// claim declares number on the PBX for owner, once.
func (n *numberPlan) claim(at path, number, owner string) {
	if first, taken := n.local[number]; taken {
		n.v.errorf(at, n.r.id, "local number %s is already %s", number, first)
		return
	}
	n.local[number] = owner
}

// agents checks each agent (id, SIP number, name, extension) and records its
// dial number (docs/asterisk.md#calls-from-the-pbx-to-omnileads).
func (n *numberPlan) agents() {
	v, r, s, t, sp := n.v, n.r, n.s, n.t, n.r.sp
	idOwner := make(map[string]int, len(s.Agents))
	sipOwner := make(map[string]int, len(s.Agents))
	t.Agents = make([]asterisk.Agent, 0, len(s.Agents))
	for i, a := range s.Agents {
		ap := sp.with("agents", i)
		ok := true
		switch {
		case a.ID == "":
			v.errorf(ap.with("id"), r.id, "required: the OML agent id")
			ok = false
		case !agentIDRE.MatchString(string(a.ID)):
			v.errorf(ap.with("id"), r.id, "%q is not an agent id (a positive integer without leading zeros)", textclip.Value(string(a.ID)))
			ok = false
		default:
			if first, dup := idOwner[string(a.ID)]; dup {
				v.errorf(ap.with("id"), r.id, "duplicate agent id: agents[%d] has it too", first)
				ok = false
			} else {
				idOwner[string(a.ID)] = i
			}
		}
		switch {
		case a.SIPNumber == "":
			v.errorf(ap.with("sip_number"), r.id, "required: the agent's SIP number in OML")
			ok = false
		case !sipNumberRE.MatchString(string(a.SIPNumber)):
			v.errorf(ap.with("sip_number"), r.id,
				"%q is not an OML SIP number: OML's [from-pbx] reads four digits starting with 1, then the agent id (_1XXX., ${EXTEN:4})",
				textclip.Value(string(a.SIPNumber)))
			ok = false
		default:
			if first, dup := sipOwner[string(a.SIPNumber)]; dup {
				v.errorf(ap.with("sip_number"), r.id, "duplicate SIP number: agents[%d] has it too", first)
				ok = false
			} else {
				sipOwner[string(a.SIPNumber)] = i
			}
		}
		v.report(ap.with("name"), r.id, asterisk.CheckLabel(a.Name))
		if a.Extension != "" {
			if !v.report(ap.with("extension"), r.id, checkNumber(a.Extension)) {
				ok = false
			} else if n.patternRouting {
				v.warnf(ap.with("extension"), r.id, "unused: agent extensions apply only with agent_routing per_agent")
			}
		}
		agent := asterisk.Agent{ID: string(a.ID), SIPNumber: string(a.SIPNumber), Name: a.Name, Extension: string(a.Extension)}
		t.Agents = append(t.Agents, agent)
		n.agentOK[i] = ok
		if ok {
			n.dialOwner[agent.DialNumber()] = i
		}
	}

}

// dids checks each DID and that no agent dial number is also a DID.
func (n *numberPlan) dids() {
	v, r, s, t, sp := n.v, n.r, n.s, n.t, n.r.sp
	t.DIDs = make([]asterisk.DID, 0, len(s.DIDs))
	for j, d := range s.DIDs {
		dp := sp.with("dids", j)
		t.DIDs = append(t.DIDs, asterisk.DID{Number: string(d.Number), Extension: string(d.Extension)})
		ok := true
		if d.Number == "" {
			v.errorf(dp.with("number"), r.id, "required: the DID of the OML inbound route")
			ok = false
		} else if !v.report(dp.with("number"), r.id, checkNumber(d.Number)) {
			ok = false
		}
		if d.Extension != "" && !v.report(dp.with("extension"), r.id, checkNumber(d.Extension)) {
			ok = false
		}
		n.didOK[j] = ok
		if !ok {
			continue
		}
		num := string(d.Number)
		if first, dup := n.didOwner[num]; dup {
			v.errorf(dp.with("number"), r.id, "duplicate DID: dids[%d] has it too", first)
			n.didOK[j] = false
			continue
		}
		n.didOwner[num] = j
		if i, clash := n.dialOwner[num]; clash {
			v.errorf(dp.with("number"), r.id, "is also the dial number of agents[%d]: OML's [from-pbx] would send the call to that agent", i)
		} else if asterisk.OMLAgentCall(num) {
			v.warnf(dp.with("number"), r.id,
				"starts with 1 and has 5 or more digits: OML's [from-pbx] takes it for an agent call (_1XXX.) before its inbound routes (docs/asterisk.md#calls-from-the-pbx-to-omnileads)")
		}
	}
}

// didClaims declares each DID's local number (its extension, else itself).
func (n *numberPlan) didClaims() {
	v, r, s, sp := n.v, n.r, n.s, n.r.sp
	for j, d := range s.DIDs {
		if !n.didOK[j] {
			continue
		}
		dp := sp.with("dids", j)
		if d.Extension == "" {
			n.claim(dp.with("number"), string(d.Number), fmt.Sprintf("dids[%d]'s local number", j))
			continue
		}
		ext := string(d.Extension)
		if k, clash := n.didOwner[ext]; clash && k != j {
			v.errorf(dp.with("extension"), r.id, "is the number of dids[%d]: dialling it on the PBX would not reach that DID", k)
			continue
		}
		if i, clash := n.dialOwner[ext]; clash {
			v.errorf(dp.with("extension"), r.id, "is the dial number of agents[%d]: the extension would shadow that agent", i)
			continue
		}
		n.claim(dp.with("extension"), ext, fmt.Sprintf("dids[%d]'s local number", j))
	}
}

// agentClaims declares each agent's local number with per-agent routing.
func (n *numberPlan) agentClaims() {
	v, r, t, sp := n.v, n.r, n.t, n.r.sp
	for i, a := range t.Agents {
		if !n.agentOK[i] || !n.perAgent {
			continue
		}
		ap := sp.with("agents", i)
		if a.Extension == "" {
			n.claim(ap, a.DialNumber(), fmt.Sprintf("agents[%d]'s local number", i))
			continue
		}
		if j, clash := n.didOwner[a.Extension]; clash {
			v.errorf(ap.with("extension"), r.id, "is the number of dids[%d]: dialling it on the PBX would not reach that DID", j)
			continue
		}
		if k, clash := n.dialOwner[a.Extension]; clash && k != i {
			v.errorf(ap.with("extension"), r.id, "is the dial number of agents[%d]: the extension would shadow that agent", k)
			continue
		}
		n.claim(ap.with("extension"), a.Extension, fmt.Sprintf("agents[%d]'s local number", i))
	}

}

// patternCoverage: with pattern routing, the one PBX route must reach every
// agent.
func (n *numberPlan) patternCoverage() {
	v, r, t := n.v, n.r, n.t
	if n.patternRouting && r.agPat.ok && len(t.Agents) > 0 {
		p := v.pattern(r.agPat.v)
		var missed []string
		for i, a := range t.Agents {
			if n.agentOK[i] && !p.Match(a.DialNumber()) {
				missed = append(missed, fmt.Sprintf("agents[%d] (%s)", i, a.DialNumber()))
			}
		}
		if len(missed) > 0 {
			relationf(v, r, r.agPat, "%s does not match the dial numbers of %s: the PBX could not call them", r.agPat.v, strings.Join(missed, ", "))
		}
	}

}

// probeGuard: the probe number must ring no one on either side
// (docs/asterisk.md#the-probe-call).
func (n *numberPlan) probeGuard() {
	v, r, t := n.v, n.r, n.t
	if !r.probe.ok {
		return
	}
	probe := string(r.probe.v)
	switch {
	case hasKey(n.didOwner, probe):
		relationf(v, r, r.probe, "%s is also dids[%d].number: the probe guard would hang that route up", probe, n.didOwner[probe])
	case hasKey(n.dialOwner, probe):
		relationf(v, r, r.probe, "%s is also the dial number of agents[%d]: the probe guard would hang that agent's calls up", probe, n.dialOwner[probe])
	case n.local[probe] != "":
		relationf(v, r, r.probe, "%s is also %s: the probe guard would hang that route up", probe, n.local[probe])
	case n.patternRouting && r.agPat.ok && len(t.Agents) > 0 && v.pattern(r.agPat.v).Match(probe):
		// Exact extensions win over patterns in Asterisk, so this works, but the
		// operator should know the pattern route loses that one number.
		v.warnf(r.sp.with("probe_number"), r.id, "%s also matches agent_pattern %s: that number is kept for the probe", probe, r.agPat.v)
	}
}

func hasKey[K comparable, V any](m map[K]V, k K) bool {
	_, ok := m[k]
	return ok
}

// The per-value checks; each returns an error that names the rule, never a secret.

func checkScenario(s string) error {
	for _, sc := range asterisk.Scenarios {
		if s == string(sc) {
			return nil
		}
	}
	return fmt.Errorf("%q is not a scenario (lan, cloud or docker)", textclip.Value(s))
}

func checkAddress(s string) error {
	if err := asterisk.CheckHost(s); err != nil {
		return err
	}
	if ip := net.ParseIP(s); ip != nil && (ip.IsUnspecified() || ip.IsMulticast()) {
		return fmt.Errorf("%s is not a host address", s)
	}
	return nil
}

func checkCodecs(codecs []string) error {
	if len(codecs) == 0 {
		return errors.New("at least one codec: disallow=all would leave none")
	}
	var errs []error
	for i, c := range codecs {
		if err := asterisk.CheckCodec(c); err != nil {
			errs = append(errs, fmt.Errorf("[%d]: %w", i, err))
		} else if slices.Index(codecs, c) < i {
			errs = append(errs, fmt.Errorf("[%d]: %s is listed twice", i, c))
		}
	}
	return joinInline(errs)
}

// joinInline joins errors on one line, so each problem stays one line of output.
func joinInline(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Error()
	}
	return errors.New(strings.Join(parts, "; "))
}

func checkDeployment(s string) error {
	switch s {
	case DeploymentHost, DeploymentDocker, DeploymentPodman:
		return nil
	}
	return fmt.Errorf("%q is not a deployment (host, docker or podman)", textclip.Value(s))
}

func checkContainer(s string) error {
	if !containerRE.MatchString(s) {
		return fmt.Errorf("%q is not a container name (letters, digits, _ . -)", textclip.Value(s))
	}
	return nil
}

func checkProfile(s string) error {
	if _, ok := asterisk.ProfileByName(s); !ok || s == "" {
		return fmt.Errorf("%q is not an OMniLeads transport profile (%s or %s)", textclip.Value(s), asterisk.ProfileOML1.Name, asterisk.ProfileOML2.Name)
	}
	return nil
}

func checkQualify(n int) error {
	// 0 would switch qualify off, and verification needs it (docs/asterisk.md#reloads-and-cli-replies).
	if n < 1 || n > maxQualifyFrequency {
		return fmt.Errorf("%d is out of range (1-%d seconds)", n, maxQualifyFrequency)
	}
	return nil
}

func checkRouting(s string) error {
	switch asterisk.AgentRouting(s) {
	case asterisk.AgentRoutingPattern, asterisk.AgentRoutingPerAgent:
		return nil
	}
	return fmt.Errorf("%q is not an agent routing (pattern or per_agent)", textclip.Value(s))
}

// checkPattern checks a dialplan pattern with the allow-list, then compiles it
// (and keeps it for matching agents).
func (v *validator) checkPattern(s string) error {
	if _, ok := v.patterns[s]; ok {
		return nil
	}
	if err := asterisk.CheckAgentPattern(s); err != nil {
		return err
	}
	v.patterns[s] = asterisk.MustCompilePattern(s) // CheckAgentPattern compiled it
	return nil
}

// pattern returns a compiled pattern that passed checkPattern, or a built-in one.
func (v *validator) pattern(s string) asterisk.Pattern {
	p, ok := v.patterns[s]
	if !ok {
		p = asterisk.MustCompilePattern(s)
		v.patterns[s] = p
	}
	return p
}

func checkNumber(n Number) error { return asterisk.CheckNumber(string(n)) }
