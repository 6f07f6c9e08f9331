// Package planner turns a fleet file into a plan: it decodes the file strictly,
// validates every value that reaches an Asterisk file or a dial string and every
// cross-side relation of docs/asterisk.md#how-the-two-sides-relate, resolves the secrets, builds one trunk
// intent per node (<site>.pbx, <site>.oml), renders both sides with the renderer
// the agents use, and compares the result with what the fleet runs now.
//
// Parse and Load return a *Spec or a *ValidationError listing every problem at
// once, each named by site and field (sites[bsas-1].dids[2].number). BuildPlan
// turns a Spec into a *Plan; Plan.Report is the same plan with every secret
// masked, for people and for JSON output.
package planner

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/pbxfleet/pbxfleet/internal/asterisk"
	"github.com/pbxfleet/pbxfleet/internal/textclip"
)

// SpecVersion is the only fleet file version this planner reads.
const SpecVersion = 1

// maxSpecBytes bounds what Load reads: 10,000 sites take about 3 MiB.
const maxSpecBytes = 64 << 20

// File is the fleet file as the operator wrote it. Pointer fields and nil slices
// mean "not set here": a site inherits the value from Defaults, and Defaults from
// the built-in defaults (see Settings).
type File struct {
	// Version must be SpecVersion.
	Version int `yaml:"version"`
	// Defaults apply to every site that does not set the value itself.
	Defaults Settings `yaml:"defaults"`
	// Sites are the sites of the fleet, in the order the plan lists them.
	Sites []SiteSpec `yaml:"sites"`
}

// Settings are the values a site may inherit from the fleet's defaults. Unset
// values fall back to the built-in defaults: scenario lan, agent_routing pattern,
// agent_pattern _1XXX., probe_number 99999 (and see PBXSpec and OMLSpec). The
// secret has no built-in default.
type Settings struct {
	// Scenario is lan, cloud or docker (docs/asterisk.md#scenarios-and-ports).
	Scenario *string `yaml:"scenario"`
	// PBX describes the Issabel side.
	PBX PBXSpec `yaml:"pbx"`
	// OML describes the OMniLeads side.
	OML OMLSpec `yaml:"oml"`
	// Secret is the trunk secret by reference: env:NAME (an environment
	// variable), file:PATH (a file, relative to the fleet file; one trailing
	// newline is dropped) or, for labs only, the literal value.
	Secret *string `yaml:"secret"`
	// AgentRouting is pattern (one dialplan pattern for every agent) or per_agent
	// (one extension per agent), docs/asterisk.md#calls-from-the-pbx-to-omnileads.
	AgentRouting *string `yaml:"agent_routing"`
	// AgentPattern is the PBX dialplan pattern of pattern routing.
	AgentPattern *string `yaml:"agent_pattern"`
	// ProbeNumber is dialled over the trunk to prove it (docs/asterisk.md#the-probe-call); it must
	// be no DID, agent number or local extension.
	ProbeNumber *Number `yaml:"probe_number"`
}

// PBXSpec is the Issabel (chan_sip) side of a site. Built-in defaults: port 5060,
// trunk_name omnileads, user issabel, codecs [alaw].
type PBXSpec struct {
	// Address is the Issabel host, an IP address or DNS name; set per site only.
	Address *string `yaml:"address"`
	// Port is chan_sip's bind port, which OML's remote_hosts points at.
	Port *int `yaml:"port"`
	// TrunkName is the chan_sip peer's section name ("Trunk Name" in the GUI).
	TrunkName *string `yaml:"trunk_name"`
	// User is the peer's defaultuser and fromuser (OML's inbound_auth/username).
	User *string `yaml:"user"`
	// Codecs is the peer's allow= list.
	Codecs []string `yaml:"codecs"`
}

// OMLSpec is the OMniLeads (pjsip wizard) side of a site. Built-in defaults:
// deployment host (docker in the docker scenario), container
// oml-asterisk-prodenv, profile 1.x, trunk_name issabel, user = the PBX trunk
// name, codecs [alaw, ulaw], qualify_frequency 60.
type OMLSpec struct {
	// Address is the OMniLeads host; set per site only. In the docker scenario it
	// defaults to the PBX address (OML runs on the PBX host).
	Address *string `yaml:"address"`
	// Deployment is how OML's Asterisk runs: host, docker or podman. It is not
	// part of the intent: the agents-node's local config says how to reach its
	// Asterisk (no command ever comes from the wire); the plan shows it so the
	// operator can check that config.
	Deployment *string `yaml:"deployment"`
	// Container is the name of OML's Asterisk container (docker and podman); like
	// Deployment it is shown, not sent.
	Container *string `yaml:"container"`
	// Profile is the OMniLeads transport profile, 1.x or 2.x (docs/asterisk.md#scenarios-and-ports).
	Profile *string `yaml:"profile"`
	// TrunkName is the pjsip wizard's section name; ^\w+$ (docs/asterisk.md#where-the-files-go).
	TrunkName *string `yaml:"trunk_name"`
	// User is outbound_auth/username and endpoint/from_user. chan_sip takes the
	// digest user for the peer's section name, so it must equal pbx.trunk_name
	// (docs/asterisk.md#how-the-two-sides-relate); leave it unset.
	User *string `yaml:"user"`
	// Codecs is the wizard's endpoint/allow list.
	Codecs []string `yaml:"codecs"`
	// QualifyFrequency is aor/qualify_frequency in seconds (1-86400).
	QualifyFrequency *int `yaml:"qualify_frequency"`
	// OutboundRoute is the OMniLeads outbound route to the PBX that an
	// agents-node in objects mode creates (docs/omnileads.md); unset fields take
	// the defaults: name pbxfleet_<trunk_name>, ring_time 25, dial_options Tt,
	// patterns [{pattern: X.}] (every number to the PBX). A site's route replaces
	// the defaults' route as a whole.
	OutboundRoute *RouteSpec `yaml:"outbound_route"`
	// InboundCampaign names the OMniLeads inbound campaign an agents-node in
	// objects mode creates an inbound route to for each DID that has none;
	// unset: the DIDs' inbound routes are only checked.
	InboundCampaign *string `yaml:"inbound_campaign"`
}

// RouteSpec is an OMniLeads outbound route (docs/omnileads.md).
type RouteSpec struct {
	// Name is the route's name in OMniLeads (letters, digits and _).
	Name *string `yaml:"name"`
	// RingTime is the dial timeout in seconds (1-3600).
	RingTime *int `yaml:"ring_time"`
	// DialOptions are Dial() options; OMniLeads allows HhKkRrL():MATtWw.
	DialOptions *string `yaml:"dial_options"`
	// Patterns are the dial patterns, in order.
	Patterns []PatternSpec `yaml:"patterns"`
}

// PatternSpec is one dial pattern: a number that starts with Prefix and matches
// Pattern is dialled without Prefix, with Prepend before it.
type PatternSpec struct {
	Prefix  Number `yaml:"prefix"`
	Prepend Number `yaml:"prepend"`
	Pattern string `yaml:"pattern"`
}

// SiteSpec is one site: its id, the settings it overrides and what the PBX
// reaches over the trunk.
type SiteSpec struct {
	// ID names the site: 1 to 63 of a-z 0-9 _ - (a NATS subject token).
	ID string `yaml:"id"`
	// Settings overrides the fleet defaults for this site.
	Settings `yaml:",inline"`
	// DIDs are OML inbound routes reachable from the PBX.
	DIDs []DIDSpec `yaml:"dids"`
	// Agents are OML agents reachable from the PBX.
	Agents []AgentSpec `yaml:"agents"`
}

// DIDSpec is an OML inbound route: the PBX extension Extension (default: the DID
// itself) sends Number over the trunk.
type DIDSpec struct {
	// Number is the DID of the OML inbound route.
	Number Number `yaml:"number"`
	// Extension is the local number dialled on the PBX; empty means Number.
	Extension Number `yaml:"extension"`
}

// AgentSpec is an OML agent: the PBX reaches it by dialling SIP number then id
// (1006 and 1 give 10061, docs/asterisk.md#calls-from-the-pbx-to-omnileads).
type AgentSpec struct {
	// ID is the OML agent id.
	ID Number `yaml:"id"`
	// SIPNumber is the agent's SIP number in OML (four digits starting with 1).
	SIPNumber Number `yaml:"sip_number"`
	// Name is informational; it reaches a dialplan comment.
	Name string `yaml:"name"`
	// Extension is the local PBX number of per_agent routing; empty means the
	// dial number.
	Extension Number `yaml:"extension"`
}

// Number is a telephone number or id written in the fleet file. Operators may
// write it quoted ("098098") or as a plain YAML integer (1006) when that cannot
// change its digits; a plain scalar that YAML tools would read differently from
// its digits (098098, 0777, 1e3, 0x10, 1_000) is refused with an error asking to
// quote it, because other tools reading the same file would lose the leading
// zero. Whether the digits are a valid number is checked by validation.
type Number string

// plainIntRE is a YAML integer that every YAML reader turns back into the same digits.
var plainIntRE = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)

// UnmarshalYAML implements yaml.Unmarshaler. It returns a *yaml.TypeError (so the
// decoder goes on and reports every problem) for a value that is not a scalar or
// that needs quoting.
func (n *Number) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.ScalarNode {
		return typeError(node, "must be a number in quotes, e.g. \"098098\", not a list or mapping")
	}
	switch node.ShortTag() {
	case "!!str":
		*n = Number(node.Value)
		return nil
	case "!!null":
		*n = ""
		return nil
	case "!!int":
		if plainIntRE.MatchString(node.Value) {
			*n = Number(node.Value)
			return nil
		}
	}
	return typeError(node, fmt.Sprintf("unquoted `%s` is %s to YAML, and its digits can change (a leading zero is lost): write it in quotes, \"%s\"",
		textclip.Value(node.Value), yamlKind(node.ShortTag()), textclip.Value(node.Value)))
}

// typeError reports a problem with node the way the decoder reports its own
// (so every problem is collected), plus the column, so decodeProblems can find
// the exact node where the decoder only gives a line.
func typeError(node *yaml.Node, msg string) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: @%d %s", node.Line, node.Column, msg)}}
}

func yamlKind(tag string) string {
	switch tag {
	case "!!int":
		return "an integer"
	case "!!float":
		return "a float"
	case "!!bool":
		return "a boolean"
	}
	return "a " + tag
}

// Options tune Parse and Load.
type Options struct {
	// AcceptWeakSecrets lets a well-known or short secret through with a warning
	// instead of an error, for labs and demos.
	AcceptWeakSecrets bool
	// LookupEnv resolves env: secrets; nil means os.LookupEnv.
	LookupEnv func(name string) (string, bool)
}

func (o Options) lookupEnv(name string) (string, bool) {
	if o.LookupEnv != nil {
		return o.LookupEnv(name)
	}
	return os.LookupEnv(name)
}

// Spec is a decoded and validated fleet file.
type Spec struct {
	// File is the fleet file as written (secrets as references).
	File File
	// Sites are the resolved sites, in file order.
	Sites []Site
	// Warnings are the problems that do not stop a plan.
	Warnings []Problem
}

// Site is one resolved site: every default applied and the secret read.
type Site struct {
	// ID is the site id.
	ID string
	// Trunk is the trunk both nodes render, with Revision 0 (the plan sets it).
	Trunk asterisk.Trunk
	// Deployment, Container and Profile say how OML's Asterisk runs; they are not
	// part of the intent (see OMLSpec.Deployment).
	Deployment, Container, Profile string
	// SecretSource says where the secret came from (env:NAME, file:PATH or
	// literal), never the secret.
	SecretSource string
}

// Load reads, decodes and validates the fleet file at path; file: secrets are
// read relative to its directory. It returns a *ValidationError (matching
// ErrInvalidSpec) when the file is invalid, or an error wrapping the I/O error
// when it cannot be read.
func Load(path string, opts Options) (*Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load fleet file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("load fleet file %s: %w", path, err)
	}
	if len(data) > maxSpecBytes {
		return nil, &ValidationError{Problems: []Problem{{Msg: fmt.Sprintf("fleet file is larger than %d MiB", maxSpecBytes>>20)}}}
	}
	return Parse(data, filepath.Dir(path), opts)
}

// Parse decodes and validates a fleet file held in data; file: secrets are read
// relative to baseDir. It returns a *ValidationError (matching ErrInvalidSpec)
// with every problem found, and a nil Spec, when anything is wrong.
func Parse(data []byte, baseDir string, opts Options) (*Spec, error) {
	if p := textProblem(data); p != nil {
		return nil, &ValidationError{Problems: []Problem{*p}}
	}
	// One parse into a node tree: checkShape walks it (every unknown key, with
	// the keys the section accepts; every integer written as a float), and only
	// then is it decoded into File, so the file is parsed once.
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ValidationError{Problems: []Problem{{Msg: "the fleet file is empty"}}}
		}
		return nil, &ValidationError{Problems: decodeProblems(nil, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &ValidationError{Problems: []Problem{{Line: extra.Line,
			Msg: "a fleet file holds one YAML document; remove the second one (after ---)"}}}
	}
	if probs := checkShape(&root, reflect.TypeOf(File{})); len(probs) > 0 {
		return nil, &ValidationError{Problems: probs}
	}
	var f File
	if err := root.Decode(&f); err != nil {
		return nil, &ValidationError{Problems: decodeProblems(&root, err)}
	}

	v := newValidator(&f, baseDir, opts)
	sites := v.run()
	if len(v.problems) > 0 {
		locate(data, v.problems)
		sortByLine(v.problems)
		return nil, &ValidationError{Problems: v.problems}
	}
	locate(data, v.warnings)
	sortByLine(v.warnings)
	return &Spec{File: f, Sites: sites, Warnings: v.warnings}, nil
}

// sortByLine puts problems in file order, the order an editor walks them; the
// sort is stable, so problems on one line keep the order they were found in.
func sortByLine(probs []Problem) {
	sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
}

// Select returns a copy of s with only the sites named by ids, in file order, or
// an error wrapping ErrUnknownSite naming every id that is not in s. No ids
// selects every site.
func (s *Spec) Select(ids ...string) (*Spec, error) {
	if len(ids) == 0 {
		return s, nil
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	out := &Spec{File: s.File}
	for _, site := range s.Sites {
		if want[site.ID] {
			out.Sites = append(out.Sites, site)
			delete(want, site.ID)
		}
	}
	if len(want) > 0 {
		var missing []string
		for _, id := range ids {
			if want[id] {
				missing = append(missing, id)
				delete(want, id)
			}
		}
		return nil, fmt.Errorf("select sites: %w: %q", ErrUnknownSite, missing)
	}
	// Keep the warnings about the selected sites and the defaults.
	for _, w := range s.Warnings {
		if w.site == "" || slices.Contains(ids, w.site) {
			out.Warnings = append(out.Warnings, w)
		}
	}
	return out, nil
}
