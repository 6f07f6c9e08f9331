package omlobjects

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
	"github.com/pbxfleet/pbxfleet/internal/intent"
)

//go:embed objects.py
var script string

// ResultMarker starts the one line of the script's answer on stdout; every
// other line (OMniLeads' own logging) is ignored.
const ResultMarker = "PBXFLEET-RESULT "

// Check names.
const (
	CheckTrunk   = "oml_trunk"
	CheckRoute   = "oml_outbound_route"
	CheckInbound = "oml_inbound_route"
)

// Runner runs argv with stdin and returns what it printed on stdout; an error
// carries what it printed on stderr.
type Runner func(ctx context.Context, argv []string, stdin []byte) ([]byte, error)

// ExecRunner runs argv as a local process.
func ExecRunner(ctx context.Context, argv []string, stdin []byte) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w: %s", argv[0], err, lastLines(errb.String(), 3))
	}
	return out.Bytes(), nil
}

// Objects keeps a site's OMniLeads objects (node.Objects).
type Objects struct {
	cfg  Config
	argv []string
	run  Runner

	mu      sync.Mutex
	checked string // the version already found supported
}

// New returns the Objects of cfg, which must ask for objects (Config.Objects);
// run nil means ExecRunner.
func New(cfg Config, run Runner) (*Objects, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	argv, err := cfg.Command()
	if err != nil {
		return nil, err
	}
	if run == nil {
		run = ExecRunner
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 90 * time.Second
	}
	return &Objects{cfg: cfg, argv: argv, run: run}, nil
}

// OwnsTrunk is true: the trunk is an OMniLeads object, not a section of the
// agent's wizard file.
func (o *Objects) OwnsTrunk() bool { return true }

// request is what the script reads (REQ).
type Request struct {
	Action          string          `json:"action"`
	Trunk           TrunkDef        `json:"trunk"`
	Route           *RouteDef       `json:"route,omitempty"`
	DIDs            []string        `json:"dids"`
	InboundCampaign string          `json:"inbound_campaign,omitempty"`
	Snapshot        json.RawMessage `json:"snapshot,omitempty"`
}

type TrunkDef struct {
	ID             int     `json:"id,omitempty"`
	Name           string  `json:"name"`
	Tecnologia     int     `json:"tecnologia,omitempty"`
	TextConfig     string  `json:"text_config,omitempty"`
	CanalesMaximos int     `json:"canales_maximos,omitempty"`
	CallerID       *string `json:"caller_id,omitempty"`
	RegisterString *string `json:"register_string,omitempty"`
}

type RouteDef struct {
	ID          int          `json:"id,omitempty"`
	Name        string       `json:"name"`
	RingTime    int          `json:"ring_time"`
	DialOptions string       `json:"dial_options"`
	Patterns    []PatternDef `json:"patterns"`
	Trunks      []string     `json:"trunks"`
}

type PatternDef struct {
	Prepend string `json:"prepend"`
	Prefix  string `json:"prefix"`
	Pattern string `json:"pattern"`
}

type InboundDef struct {
	ID        int    `json:"id"`
	Name      string `json:"name"`
	DID       string `json:"did"`
	DstType   int    `json:"dst_type"`
	DstObject int    `json:"dst_object"`
	DstName   string `json:"dst_name"`
	Lang      string `json:"lang"`
}

// State is what OMniLeads holds for a site: the database rows and the Redis
// hashes its synchronizers wrote from them.
type State struct {
	Trunk        *TrunkDef                    `json:"trunk"`
	TrunkRedis   map[string]string            `json:"trunk_redis"`
	Route        *RouteDef                    `json:"route"`
	RouteRedis   map[string]string            `json:"route_redis"`
	Inbound      map[string]*InboundDef       `json:"inbound"`
	InboundRedis map[string]map[string]string `json:"inbound_redis"`
}

type Answer struct {
	Version    string   `json:"version"`
	Features   []string `json:"features"`
	Changed    []string `json:"changed"`
	SyncErrors []string `json:"sync_errors"`
	State      *State   `json:"state"`
	Error      string   `json:"error"`
	Trace      []string `json:"trace"`
}

// snapshot is what Snapshot returns and Restore reads: the names it was taken
// for and what OMniLeads held for them.
type snapshot struct {
	Trunk   string   `json:"trunk"`
	Route   string   `json:"route"`
	DIDs    []string `json:"dids"`
	Version string   `json:"version"`
	State   State    `json:"state"`
}

// Want is the objects a trunk intent asks for.
type Want struct {
	Trunk           TrunkDef
	Route           RouteDef
	DIDs            []string
	InboundCampaign string
}

// WantFor returns the objects t asks for, with secret in the trunk's text
// config (it is in clear there, as in a trunk made in the web UI).
func WantFor(t events.Trunk, secret string) (Want, error) {
	at := intent.ToTrunk(t)
	at.Secret = secret
	text, err := asterisk.WizardText(at)
	if err != nil {
		return Want{}, err
	}
	r := t.Route()
	w := Want{
		Trunk: TrunkDef{Name: t.OMLTrunkName, Tecnologia: 1, TextConfig: text, CanalesMaximos: 1000},
		Route: RouteDef{Name: r.Name, RingTime: r.RingTime, DialOptions: r.DialOptions, Trunks: []string{t.OMLTrunkName}},
		DIDs:  didNumbers(t), InboundCampaign: r.InboundCampaign,
	}
	for _, p := range r.Patterns {
		w.Route.Patterns = append(w.Route.Patterns, PatternDef{Prepend: p.Prepend, Prefix: p.Prefix, Pattern: p.Pattern})
	}
	return w, nil
}

func didNumbers(t events.Trunk) []string {
	out := make([]string, 0, len(t.DIDs))
	for _, d := range t.DIDs {
		out = append(out, d.Number)
	}
	return out
}

// call runs the script with req and returns its answer; a run that did not
// answer, or answered an error, is an error.
func (o *Objects) call(ctx context.Context, req Request) (Answer, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Answer{}, err
	}
	stdin := "import base64, json; REQ = json.loads(base64.b64decode('" + base64.StdEncoding.EncodeToString(body) + "').decode())\n" + script
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	out, runErr := o.run(ctx, o.argv, []byte(stdin))
	var a Answer
	found := false
	for _, l := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), ResultMarker); ok {
			if err := json.Unmarshal([]byte(rest), &a); err != nil {
				return Answer{}, fmt.Errorf("%w: management shell %s: unreadable answer: %w", ErrOMniLeads, req.Action, err)
			}
			found = true
		}
	}
	switch {
	case !found && runErr != nil:
		return Answer{}, fmt.Errorf("%w: management shell %s: %w", ErrOMniLeads, req.Action, runErr)
	case !found:
		return Answer{}, fmt.Errorf("%w: management shell %s: no answer (is %q OMniLeads' manage.py shell?): %s", ErrOMniLeads, req.Action, strings.Join(o.argv, " "), lastLines(string(out), 3))
	case a.Error != "":
		return a, fmt.Errorf("%w: %s: %s", ErrOMniLeads, req.Action, a.Error)
	}
	return a, nil
}

// supported refuses a version the kind does not drive, and an OMniLeads
// without the model fields the script uses.
func (o *Objects) supported(a Answer) error {
	v := a.Version
	if o.cfg.Version != "" {
		v = o.cfg.Version
	}
	if err := Supported(o.cfg.Deployment, v); err != nil {
		return err
	}
	if len(a.Features) > 0 {
		return fmt.Errorf("%w: OMniLeads %s lacks %s", ErrUnsupported, v, strings.Join(a.Features, ", "))
	}
	o.mu.Lock()
	o.checked = v
	o.mu.Unlock()
	return nil
}

func (o *Objects) inspect(ctx context.Context, t events.Trunk) (Answer, error) {
	r := t.Route()
	a, err := o.call(ctx, Request{Action: "inspect", Trunk: TrunkDef{Name: t.OMLTrunkName}, Route: &RouteDef{Name: r.Name}, DIDs: didNumbers(t)})
	if err != nil {
		return a, err
	}
	if err := o.supported(a); err != nil {
		return a, err
	}
	if a.State == nil {
		return a, fmt.Errorf("%w: inspect: no state in the answer", ErrOMniLeads)
	}
	return a, nil
}

// Snapshot reads what OMniLeads holds under the names t uses (nothing changes).
func (o *Objects) Snapshot(ctx context.Context, t events.Trunk) (json.RawMessage, error) {
	a, err := o.inspect(ctx, t)
	if err != nil {
		return nil, err
	}
	return json.Marshal(snapshot{Trunk: t.OMLTrunkName, Route: t.Route().Name, DIDs: didNumbers(t), Version: a.Version, State: *a.State})
}

// Apply creates or updates the trunk and the outbound route through OMniLeads'
// models and synchronizers (and the DIDs' inbound routes when the intent names a
// campaign), then checks that what its database holds reached its Redis: a
// synchronizer that failed (OMniLeads' AMI unreachable) leaves them disagreeing,
// and the apply fails then instead of reporting success.
func (o *Objects) Apply(ctx context.Context, t events.Trunk, secret string) ([]events.Check, error) {
	w, err := WantFor(t, secret)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	checked := o.checked
	o.mu.Unlock()
	if checked == "" {
		if _, err := o.inspect(ctx, t); err != nil {
			return nil, err
		}
	}
	a, err := o.call(ctx, Request{Action: "apply", Trunk: w.Trunk, Route: &w.Route, DIDs: w.DIDs, InboundCampaign: w.InboundCampaign})
	if err != nil {
		return nil, mask(err, secret)
	}
	var errs []string
	for _, e := range a.SyncErrors {
		errs = append(errs, "OMniLeads "+e)
	}
	if a.State == nil {
		errs = append(errs, "no state in the answer")
	} else if d := Disagreements(*a.State); len(d) > 0 {
		errs = append(errs, "database and Redis disagree: "+strings.Join(d, "; "))
	}
	if len(errs) > 0 {
		return nil, mask(fmt.Errorf("%w: apply: %s", ErrOMniLeads, strings.Join(errs, "; ")), secret)
	}
	// The answer holds the state after the apply: its checks are the ones a
	// Verify would find, without running OMniLeads' shell again.
	return Checks(*a.State, t), nil
}

// Restore puts back the objects of a snapshot: the definitions it held are
// written again (through the synchronizers), objects it did not hold are
// deleted (an inbound route only when pbxfleet made it).
func (o *Objects) Restore(ctx context.Context, raw json.RawMessage) error {
	var s snapshot
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("read the objects snapshot: %w", err)
	}
	snap, err := json.Marshal(s.State)
	if err != nil {
		return err
	}
	a, err := o.call(ctx, Request{Action: "restore", Trunk: TrunkDef{Name: s.Trunk}, Route: &RouteDef{Name: s.Route}, DIDs: s.DIDs, Snapshot: snap})
	if err != nil {
		return err
	}
	var errs []string
	errs = append(errs, a.SyncErrors...)
	if a.State != nil {
		errs = append(errs, Disagreements(*a.State)...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: restore: %s", ErrOMniLeads, strings.Join(errs, "; "))
	}
	return nil
}

// Verify checks that the objects exist and agree with t, in the database and in
// Redis, where OMniLeads' dialplan reads them at call time: the trunk (its
// OML:TRUNK hash names it), the outbound route (its OML:OUTR hash points at the
// trunk's id) and one check per DID (OML:INR:<DID> exists).
func (o *Objects) Verify(ctx context.Context, t events.Trunk) []events.Check {
	a, err := o.inspect(ctx, t)
	if err != nil {
		return []events.Check{{Name: CheckTrunk, Passed: false, Detail: err.Error()}}
	}
	return Checks(*a.State, t)
}

// Checks returns the checks of st against t.
func Checks(st State, t events.Trunk) []events.Check {
	var out []events.Check
	name := t.OMLTrunkName
	tc := events.Check{Name: CheckTrunk}
	trunkID := ""
	switch {
	case st.Trunk == nil:
		tc.Detail = "OMniLeads has no SIP trunk " + name
	case st.Trunk.Tecnologia != 1:
		tc.Detail = fmt.Sprintf("SIP trunk %s is not pjsip (tecnologia %d)", name, st.Trunk.Tecnologia)
	case st.TrunkRedis["NAME"] != name || st.TrunkRedis["TECH"] != "PJSIP":
		tc.Detail = fmt.Sprintf("SIP trunk %s (id %d) is in the database but OML:TRUNK:%d is %s", name, st.Trunk.ID, st.Trunk.ID, showHash(st.TrunkRedis))
	default:
		trunkID = strconv.Itoa(st.Trunk.ID)
		tc.Passed = true
		tc.Detail = fmt.Sprintf("SIP trunk %s id %d, pjsip; OML:TRUNK:%d %s", name, st.Trunk.ID, st.Trunk.ID, showHash(st.TrunkRedis))
	}
	out = append(out, tc)

	r := t.Route()
	rc := events.Check{Name: CheckRoute}
	switch {
	case st.Route == nil:
		rc.Detail = "OMniLeads has no outbound route " + r.Name
	case len(st.Route.Trunks) != 1 || st.Route.Trunks[0] != name:
		rc.Detail = fmt.Sprintf("outbound route %s uses trunks %v, not %s alone", r.Name, st.Route.Trunks, name)
	case trunkID == "":
		rc.Detail = fmt.Sprintf("outbound route %s: its trunk %s is not in Redis", r.Name, name)
	case st.RouteRedis["NAME"] != r.Name || st.RouteRedis["TRUNK-1"] != trunkID || st.RouteRedis["TRUNKS"] != "1":
		rc.Detail = fmt.Sprintf("outbound route %s (id %d): OML:OUTR:%d is %s, want TRUNK-1=%s", r.Name, st.Route.ID, st.Route.ID, showHash(st.RouteRedis), trunkID)
	case !samePatterns(st.Route.Patterns, r.Patterns):
		rc.Detail = fmt.Sprintf("outbound route %s has patterns %s, want %s", r.Name, showPatterns(st.Route.Patterns), showWanted(r.Patterns))
	default:
		rc.Passed = true
		rc.Detail = fmt.Sprintf("outbound route %s id %d, patterns %s; OML:OUTR:%d TRUNK-1=%s (%s)", r.Name, st.Route.ID, showPatterns(st.Route.Patterns), st.Route.ID, trunkID, name)
	}
	out = append(out, rc)

	for _, did := range didNumbers(t) {
		c := events.Check{Name: CheckInbound + " " + did}
		h := st.InboundRedis[did]
		switch {
		case len(h) == 0 && st.Inbound[did] == nil:
			c.Detail = fmt.Sprintf("DID %s has no inbound route in OMniLeads (OML:INR:%s missing)", did, did)
		case len(h) == 0:
			c.Detail = fmt.Sprintf("DID %s: inbound route %s is in the database but OML:INR:%s is missing", did, st.Inbound[did].Name, did)
		default:
			c.Passed = true
			c.Detail = fmt.Sprintf("DID %s: OML:INR:%s %s", did, did, showHash(h))
		}
		out = append(out, c)
	}
	return out
}

// Disagreements lists where the database and Redis disagree in st: a row
// whose hash is missing or names something else.
func Disagreements(st State) []string {
	var out []string
	if st.Trunk != nil && st.TrunkRedis["NAME"] != st.Trunk.Name {
		out = append(out, fmt.Sprintf("SIP trunk %s (id %d) has OML:TRUNK:%d %s", st.Trunk.Name, st.Trunk.ID, st.Trunk.ID, showHash(st.TrunkRedis)))
	}
	if st.Route != nil && st.RouteRedis["NAME"] != st.Route.Name {
		out = append(out, fmt.Sprintf("outbound route %s (id %d) has OML:OUTR:%d %s", st.Route.Name, st.Route.ID, st.Route.ID, showHash(st.RouteRedis)))
	}
	dids := make([]string, 0, len(st.Inbound))
	for did := range st.Inbound {
		dids = append(dids, did)
	}
	sort.Strings(dids)
	for _, did := range dids {
		if st.Inbound[did] != nil && len(st.InboundRedis[did]) == 0 {
			out = append(out, fmt.Sprintf("inbound route %s has no OML:INR:%s", st.Inbound[did].Name, did))
		}
	}
	return out
}

func samePatterns(got []PatternDef, want []events.DialPattern) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Pattern != want[i].Pattern || got[i].Prefix != want[i].Prefix || got[i].Prepend != want[i].Prepend {
			return false
		}
	}
	return true
}

func showPatterns(ps []PatternDef) string {
	s := make([]string, 0, len(ps))
	for _, p := range ps {
		s = append(s, showPattern(p.Prefix, p.Prepend, p.Pattern))
	}
	return strings.Join(s, ",")
}

func showWanted(ps []events.DialPattern) string {
	s := make([]string, 0, len(ps))
	for _, p := range ps {
		s = append(s, showPattern(p.Prefix, p.Prepend, p.Pattern))
	}
	return strings.Join(s, ",")
}

// ShowPattern writes a dial pattern as prepend+prefix|pattern, the way
// OMniLeads' form shows it.
func showPattern(prefix, prepend, pattern string) string {
	s := pattern
	if prefix != "" {
		s = prefix + "|" + s
	}
	if prepend != "" {
		s = prepend + "+" + s
	}
	return s
}

// ShowPattern is showPattern for other packages (plan output).
func ShowPattern(p events.DialPattern) string { return showPattern(p.Prefix, p.Prepend, p.Pattern) }

func showHash(h map[string]string) string {
	if len(h) == 0 {
		return "missing"
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+h[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func mask(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return maskedError{msg: string(asterisk.Mask([]byte(err.Error()), secret)), err: err}
}

// maskedError is an error whose text has the secret masked; errors.Is still
// sees what it wraps.
type maskedError struct {
	msg string
	err error
}

func (e maskedError) Error() string { return e.msg }
func (e maskedError) Unwrap() error { return e.err }

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// ReadRequest reads the request out of a script as Objects sends it to the
// management shell (its first line sets REQ): for stand-ins of OMniLeads that
// answer the same protocol (internal/lab).
func ReadRequest(stdin []byte) (Request, error) {
	first, _, _ := strings.Cut(string(stdin), "\n")
	_, rest, ok := strings.Cut(first, "b64decode('")
	if !ok {
		return Request{}, fmt.Errorf("%w: no request line", ErrOMniLeads)
	}
	b64, _, ok := strings.Cut(rest, "'")
	if !ok {
		return Request{}, fmt.Errorf("%w: no request line", ErrOMniLeads)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return Request{}, fmt.Errorf("%w: request: %w", ErrOMniLeads, err)
	}
	var req Request
	if err := json.Unmarshal(raw, &req); err != nil {
		return Request{}, fmt.Errorf("%w: request: %w", ErrOMniLeads, err)
	}
	return req, nil
}

// WriteAnswer is the line the script prints for a.
func WriteAnswer(a Answer) []byte {
	b, _ := json.Marshal(a)
	return []byte(ResultMarker + string(b) + "\n")
}

// ShowPatternDef is showPattern for a pattern as OMniLeads holds it.
func ShowPatternDef(p PatternDef) string { return showPattern(p.Prefix, p.Prepend, p.Pattern) }

// RouteProbeNumber returns the number that, dialled into OMniLeads' outbound
// routes, t's route sends to the PBX as t's probe number: the prefix of the
// first pattern with no prepend that matches the probe number, then the probe
// number. False when the route probe is off or no pattern fits.
func (o *Objects) RouteProbeNumber(t events.Trunk) (string, bool) {
	if !o.cfg.RouteProbe || t.ProbeNumber == "" {
		return "", false
	}
	for _, p := range t.Route().Patterns {
		if p.Prepend == "" && MatchPattern(p.Pattern, t.ProbeNumber) {
			return p.Prefix + t.ProbeNumber, true
		}
	}
	return "", false
}

// MatchPattern reports whether number matches an Asterisk extension pattern
// written without its leading _ (X, Z, N, [...], and . or ! at the end).
func MatchPattern(pattern, number string) bool {
	i := 0
	for j := 0; j < len(pattern); j++ {
		c := pattern[j]
		switch c {
		case '.':
			return i < len(number)
		case '!':
			return true
		case '-':
			continue
		}
		if i >= len(number) {
			return false
		}
		d := number[i]
		switch c {
		case 'X', 'x':
			if d < '0' || d > '9' {
				return false
			}
		case 'Z', 'z':
			if d < '1' || d > '9' {
				return false
			}
		case 'N', 'n':
			if d < '2' || d > '9' {
				return false
			}
		case '[':
			end := strings.IndexByte(pattern[j:], ']')
			if end < 0 {
				return false
			}
			set := pattern[j+1 : j+end]
			j += end
			ok := false
			for k := 0; k < len(set); k++ {
				if k+2 < len(set) && set[k+1] == '-' {
					if d >= set[k] && d <= set[k+2] {
						ok = true
					}
					k += 2
				} else if set[k] == d {
					ok = true
				}
			}
			if !ok {
				return false
			}
		default:
			if c != d {
				return false
			}
		}
		i++
	}
	return i == len(number)
}
