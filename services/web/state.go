package web

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/fleethealth"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// maxResultHistory is how many results per node the page lists (the latest in
// full, with its checks and raw lines; the ones before it summarized).
const maxResultHistory = 5

// nodeState is what the server knows of one node. It keeps no secret: of the
// desired state only the revision and scenario.
type nodeState struct {
	id              string
	desiredRev      uint64
	desiredErr      string
	scenario        string
	status          *events.Status
	statusErr       string
	statusStoredAt  time.Time // server time of the status entry, for its TTL
	last            *events.Result
	lastFailure     *events.Result  // the latest failed, rolled back or rejected apply
	history         []ResultSummary // newest first, at most maxResultHistory
	lastProbeAt     time.Time
	lastProbeResult string
}

// siteState is one site: its nodes by role.
type siteState struct {
	id    string
	nodes map[string]*nodeState
}

// rolloutState is one rollout as stored: its header and its sites.
type rolloutState struct {
	header orchestrator.Rollout
	sites  map[string]orchestrator.SiteState
}

// state is the server's view of the fleet and the rollouts, fed by the watches.
type state struct {
	sites     map[string]*siteState
	rollouts  map[string]*rolloutState
	current   string // the active rollout, else the last one
	active    string
	last      string
	statusTTL time.Duration
}

func newState() *state {
	return &state{sites: map[string]*siteState{}, rollouts: map[string]*rolloutState{}}
}

func (s *state) node(id string) *nodeState {
	site, role, err := events.ParseNodeID(id)
	if err != nil {
		return nil
	}
	st, ok := s.sites[site]
	if !ok {
		st = &siteState{id: site, nodes: map[string]*nodeState{}}
		s.sites[site] = st
	}
	n, ok := st.nodes[role]
	if !ok {
		n = &nodeState{id: id}
		st.nodes[role] = n
	}
	return n
}

// dropEmptySite forgets a site none of whose nodes has anything left.
func (s *state) dropEmptySite(site string) {
	st, ok := s.sites[site]
	if !ok {
		return
	}
	for role, n := range st.nodes {
		if n.desiredRev == 0 && n.desiredErr == "" && n.status == nil && n.statusErr == "" && n.last == nil {
			delete(st.nodes, role)
		}
	}
	if len(st.nodes) == 0 {
		delete(s.sites, site)
	}
}

// NodeView is one node as the page shows it: the fleet-health rule's view
// (fleethealth.Judge, as `pbxfleet status`) and its last apply and probe.
type NodeView struct {
	fleethealth.Node
	// Outcome is how its last apply ended.
	Outcome string `json:"outcome,omitempty"`
	// LastProbe is the last probe call's verdict; LastProbeAt when it ended
	// (zero when only the status names it).
	LastProbe   string    `json:"last_probe,omitempty"`
	LastProbeAt time.Time `json:"last_probe_at,omitzero"`
}

// SiteView is one row of the fleet table.
type SiteView struct {
	Site     string     `json:"site"`
	Scenario string     `json:"scenario,omitempty"`
	Healthy  bool       `json:"healthy"`
	Nodes    []NodeView `json:"nodes"`
}

// roles is the order nodes are shown in.
var roles = []string{events.RolePBX, events.RoleOML}

func (s *state) siteView(site string, now time.Time) (SiteView, bool) {
	st, ok := s.sites[site]
	if !ok {
		return SiteView{}, false
	}
	v := SiteView{Site: site, Healthy: true}
	for _, role := range roles {
		n, ok := st.nodes[role]
		if !ok {
			continue
		}
		nv := s.nodeView(n, now)
		if n.scenario != "" {
			v.Scenario = n.scenario
		}
		v.Healthy = v.Healthy && nv.Healthy
		v.Nodes = append(v.Nodes, nv)
	}
	if len(v.Nodes) < len(roles) {
		v.Healthy = false
	}
	return v, true
}

func (s *state) nodeView(n *nodeState, now time.Time) NodeView {
	in := fleethealth.Input{}
	if n.desiredErr != "" {
		in.DesiredErr = errString(n.desiredErr)
	} else if n.desiredRev != 0 {
		in.Desired = &events.Desired{Node: n.id, Revision: n.desiredRev}
	}
	if n.statusErr != "" {
		in.StatusErr = errString(n.statusErr)
	} else if n.status != nil && !s.expired(n, now) {
		in.Status = n.status
	}
	v := NodeView{Node: fleethealth.Judge(n.id, in)}
	if in.Status != nil {
		v.Outcome, v.LastProbe = string(in.Status.Outcome), in.Status.LastProbe
	}
	if n.last != nil {
		v.Outcome = string(n.last.Outcome)
	}
	if n.lastProbeResult != "" && (v.LastProbe == "" || v.LastProbe == n.lastProbeResult) {
		v.LastProbe, v.LastProbeAt = n.lastProbeResult, n.lastProbeAt
	}
	return v
}

// expired says the node's status entry outlived the bucket's TTL: the node
// stopped reporting (KV expiry sends no delete to a watch).
func (s *state) expired(n *nodeState, now time.Time) bool {
	return s.statusTTL > 0 && !n.statusStoredAt.IsZero() && now.Sub(n.statusStoredAt) > s.statusTTL
}

type errString string

func (e errString) Error() string { return string(e) }

// sortedSites returns the site names in order.
func (s *state) sortedSites() []string {
	out := make([]string, 0, len(s.sites))
	for id := range s.sites {
		out = append(out, id)
	}
	slices.SortFunc(out, naturalCompare)
	return out
}

// naturalCompare orders names with their digit runs as numbers: site-2
// before site-10, as the page sorts a site that appears later.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := len(na) - len(nb); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// ResultSummary is one apply result in a few fields.
type ResultSummary struct {
	Revision   uint64    `json:"revision"`
	Rollout    string    `json:"rollout,omitempty"`
	Outcome    string    `json:"outcome"`
	Reason     string    `json:"reason,omitempty"`
	Trunk      string    `json:"trunk,omitempty"`
	RTTMS      float64   `json:"rtt_ms"`
	Probe      string    `json:"probe,omitempty"`
	FinishedAt time.Time `json:"finished_at"`
	DurationMS int64     `json:"duration_ms"`
}

func summarize(r events.Result) ResultSummary {
	rs := ResultSummary{Revision: r.Revision, Rollout: r.Rollout, Outcome: string(r.Outcome), Reason: r.Reason,
		Trunk: r.Trunk.State, RTTMS: r.Trunk.RTTMS, FinishedAt: r.FinishedAt, DurationMS: r.FinishedAt.Sub(r.StartedAt).Milliseconds()}
	if r.Probe != nil {
		rs.Probe = r.Probe.Verdict
	}
	return rs
}

// addResult records a node's result (they come in stream order).
func (s *state) addResult(r events.Result) bool {
	n := s.node(r.Node)
	if n == nil {
		return false
	}
	r.Checks = scrubChecks(r.Checks)
	n.last = &r
	switch r.Outcome {
	case events.OutcomeFailed, events.OutcomeRolledBack, events.OutcomeRejected:
		n.lastFailure = &r
	}
	n.history = append([]ResultSummary{summarize(r)}, n.history...)
	if len(n.history) > maxResultHistory {
		n.history = n.history[:maxResultHistory]
	}
	if r.Probe != nil {
		n.lastProbeResult, n.lastProbeAt = r.Probe.Verdict, r.FinishedAt
	}
	return true
}

// secretLine matches a CLI line that names a secret with its value (chan_sip
// prints <Set>, but a pjsip auth object or a config dump may print it).
var secretLine = regexp.MustCompile(`(?i)^(\s*[\w ]*(?:secret|password|md5_cred|passwd)[\w ]*?\s*(?::|=>|=)\s*)(.*)$`)

// scrub hides the value of a line that names a secret; <Set> and <Not set>
// stay, they say nothing.
func scrub(line string) string {
	m := secretLine.FindStringSubmatch(line)
	if m == nil {
		return line
	}
	v := strings.TrimSpace(m[2])
	if v == "" || v == "<Set>" || v == "<Not set>" || v == "(null)" {
		return line
	}
	return m[1] + "<hidden>"
}

func scrubChecks(cs []events.Check) []events.Check {
	out := make([]events.Check, len(cs))
	for i, c := range cs {
		c.Detail = scrub(c.Detail)
		raw := make([]string, len(c.Raw))
		for j, l := range c.Raw {
			raw[j] = scrub(l)
		}
		c.Raw = raw
		out[i] = c
	}
	return out
}

// pickCurrent picks the rollout the page follows: the active one, else the last
// started, else the newest it knows.
func (s *state) pickCurrent() string {
	for _, id := range []string{s.active, s.last} {
		if r, ok := s.rollouts[id]; ok && r.header.ID != "" {
			return id
		}
	}
	var best string
	var at time.Time
	for id, r := range s.rollouts {
		if r.header.ID == "" {
			continue
		}
		if r.header.CreatedAt.After(at) || best == "" {
			best, at = id, r.header.CreatedAt
		}
	}
	return best
}

// RolloutHeader is a rollout as the page's list shows it: no sites.
type RolloutHeader struct {
	orchestrator.Rollout
	// DurationMS is from creation to finish, or to now while it runs.
	DurationMS int64 `json:"duration_ms"`
}

func header(r orchestrator.Rollout, now time.Time) RolloutHeader {
	r.Sites = nil
	end := now
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	return RolloutHeader{Rollout: r, DurationMS: end.Sub(r.CreatedAt).Milliseconds()}
}

func (s *state) headers(now time.Time) []RolloutHeader {
	out := make([]RolloutHeader, 0, len(s.rollouts))
	for _, r := range s.rollouts {
		if r.header.ID == "" {
			continue
		}
		out = append(out, header(r.header, now))
	}
	slices.SortFunc(out, func(a, b RolloutHeader) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out
}

func (s *state) rolloutSites(id string) []orchestrator.SiteState {
	r, ok := s.rollouts[id]
	if !ok {
		return nil
	}
	out := make([]orchestrator.SiteState, 0, len(r.sites))
	for _, st := range r.sites {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b orchestrator.SiteState) int { return a.Index - b.Index })
	return out
}

// Revision is one rollout's entry in a site's history.
type Revision struct {
	Rollout   string                 `json:"rollout"`
	Origin    string                 `json:"origin,omitempty"`
	Phase     orchestrator.Phase     `json:"phase"`
	CreatedAt time.Time              `json:"created_at"`
	Site      orchestrator.SiteState `json:"site"`
}

// SiteDetail is what the site panel shows.
type SiteDetail struct {
	SiteView
	Nodes     []NodeDetail `json:"node_details"`
	Revisions []Revision   `json:"revisions"`
}

// NodeDetail is one node's last result in full (checks, raw CLI lines,
// managed file hashes) and the results before it.
type NodeDetail struct {
	Node string         `json:"node"`
	Role string         `json:"role"`
	Last *events.Result `json:"last,omitempty"`
	// LastFailure is the latest apply that failed, when it is not Last: the
	// evidence of what went wrong after a restore converged.
	LastFailure *events.Result  `json:"last_failure,omitempty"`
	History     []ResultSummary `json:"history,omitempty"`
}

func (s *state) siteDetail(site string, now time.Time) (SiteDetail, bool) {
	v, ok := s.siteView(site, now)
	if !ok {
		return SiteDetail{}, false
	}
	d := SiteDetail{SiteView: v}
	st := s.sites[site]
	for _, role := range roles {
		n, ok := st.nodes[role]
		if !ok {
			continue
		}
		nd := NodeDetail{Node: n.id, Role: role, Last: n.last, History: n.history}
		if n.lastFailure != nil && n.lastFailure != n.last {
			nd.LastFailure = n.lastFailure
		}
		d.Nodes = append(d.Nodes, nd)
	}
	for id, r := range s.rollouts {
		ss, ok := r.sites[site]
		if !ok {
			continue
		}
		d.Revisions = append(d.Revisions, Revision{Rollout: id, Origin: r.header.Origin, Phase: r.header.Phase, CreatedAt: r.header.CreatedAt, Site: ss})
	}
	slices.SortFunc(d.Revisions, func(a, b Revision) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return d, true
}
