package orchestrator

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/secretpolicy"
	"github.com/pbxfleet/pbxfleet/internal/strictjson"
)

// Target is one site of a plan and the intent of each of its nodes.
type Target struct {
	// Site is the site name, [a-z0-9_-]{1,63}.
	Site string `json:"site"`
	// Nodes maps a role (events.RolePBX, events.RoleOML) to the node's intent.
	// A site is usually both; a site with one role waits for that node only.
	Nodes map[string]events.Trunk `json:"nodes"`
}

// Plan is what a rollout puts: the intent of every node, in site order, and the
// hash that identifies the plan (services/planner computes it; Start computes
// one over the targets when it is empty).
type Plan struct {
	// Targets are the sites in the order the rollout visits them.
	Targets []Target `json:"targets"`
	// Hash identifies the plan; every desired state put carries it as PlanHash.
	Hash string `json:"hash"`
	// AcceptWeakSecrets lets weak secrets through (labs: `pbxfleet rollout
	// --accept-weak-secrets`); key material is refused all the same, and an
	// agent writes a weak secret only when its own configuration accepts them.
	AcceptWeakSecrets bool `json:"accept_weak_secrets,omitempty"`
}

// roles is the fixed order of a site's nodes.
var roles = [...]string{events.RolePBX, events.RoleOML}

// Validate returns nil for a usable plan and otherwise every problem joined, each
// wrapping ErrInvalidPlan and naming the site and field.
func (p Plan) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidPlan}, args...)...))
	}
	if len(p.Targets) == 0 {
		bad("no targets")
	}
	seen := make(map[string]bool, len(p.Targets))
	for i, t := range p.Targets {
		if err := events.ValidateSite(t.Site); err != nil {
			bad("targets[%d].site: %v", i, err)
			continue
		}
		if seen[t.Site] {
			bad("site %s: listed twice", t.Site)
		}
		seen[t.Site] = true
		if len(t.Nodes) == 0 {
			bad("site %s: no nodes", t.Site)
		}
		for role, trunk := range t.Nodes {
			if err := events.ValidateRole(role); err != nil {
				bad("site %s: nodes: %v", t.Site, err)
				continue
			}
			d := events.Desired{Node: events.NodeID(t.Site, role), Revision: 1, Trunk: trunk}
			if err := d.Validate(); err != nil {
				bad("site %s node %s: %v", t.Site, d.Node, err)
			}
			// The same policy as plan's (a sealed secret is the agent's to check).
			if trunk.Secret != "" {
				if err := secretpolicy.Check(trunk.Secret, secretpolicy.Options{AcceptWeak: p.AcceptWeakSecrets}); err != nil {
					bad("site %s node %s: secret: %v", t.Site, d.Node, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// hashOf returns the plan's hash, or a sha256 over its targets when it has none.
func (p Plan) hashOf() string {
	if p.Hash != "" {
		return p.Hash
	}
	h := sha256.New()
	h.Write([]byte("pbxfleet-orchestrator-plan-v1"))
	for _, t := range p.Targets {
		for _, role := range roles {
			if tr, ok := t.Nodes[role]; ok {
				b, _ := json.Marshal(tr)
				h.Write([]byte(events.NodeID(t.Site, role)))
				h.Write(b)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// What a rollout does when its failure budget is spent.
const (
	// OnFailureRollback re-publishes the previous intent of every node the
	// rollout touched (the default).
	OnFailureRollback = "rollback"
	// OnFailurePause stops starting sites and waits for resume, abort or rollback.
	OnFailurePause = "pause"
)

// What a rollout does with a site that failed.
const (
	// OnSiteFailureRestore puts the previous intent of the failed site's nodes
	// back as a new revision and proves it with a probe, so what the desired
	// keys say is what the site runs (the default).
	OnSiteFailureRestore = "restore"
	// OnSiteFailureKeep leaves a failed site's keys as the rollout put them.
	OnSiteFailureKeep = "keep"
)

// DefaultSiteDeadline is the site deadline when Strategy.SiteDeadline is zero.
const DefaultSiteDeadline = 10 * time.Minute

// NoLimit as a per-wave budget means no per-wave limit.
const NoLimit = -1

// Strategy says how a rollout walks the plan. The zero value is one wave of all
// sites, all in flight at once, no failure tolerated, roll back on failure.
//
// Wave 0 is the canary when Canary or CanarySites is set: it must converge
// entirely (any failed or unreachable canary site spends the budget, whatever
// the limits), since catching a bad intent early is what a canary is for. The
// remaining sites follow in waves of WaveSize sites or WavePercent percent of
// them (rounded up), or in one wave when neither is set. Sites already at the
// planned revision are skipped before waves are cut.
//
// Budgets count sites, failed and unreachable separately; a budget is spent
// when a count exceeds its limit (MaxFailed 0: the first failed site spends it).
// The per-wave limits count the sites of the current wave; NoLimit (-1) turns
// them off, 0 tolerates none.
type Strategy struct {
	// Canary is the number of first sites (plan order) in the canary wave.
	Canary int
	// CanarySites names the canary sites instead; exclusive with Canary.
	CanarySites []string
	// WaveSize is the number of sites per wave after the canary.
	WaveSize int
	// WavePercent is the share of the remaining sites per wave, 1..100;
	// exclusive with WaveSize.
	WavePercent int
	// Parallelism is the most sites in flight inside a wave; 0 means the whole wave.
	Parallelism int
	// Bake is the wait between a successful wave and the next one.
	Bake time.Duration
	// SiteDeadline is how long a started site's nodes have to report before the
	// site counts as unreachable; 0 means DefaultSiteDeadline.
	SiteDeadline time.Duration
	// MaxFailed is how many failed sites the whole rollout tolerates.
	MaxFailed int
	// MaxUnreachable is how many unreachable sites the whole rollout tolerates.
	MaxUnreachable int
	// WaveMaxFailed is how many failed sites one wave tolerates; NoLimit for none.
	WaveMaxFailed int
	// WaveMaxUnreachable is how many unreachable sites one wave tolerates; NoLimit for none.
	WaveMaxUnreachable int
	// OnFailure is OnFailureRollback (default when empty) or OnFailurePause.
	OnFailure string
	// OnSiteFailure is OnSiteFailureRestore (default when empty) or
	// OnSiteFailureKeep: what becomes of one site that failed (the budget
	// decides what becomes of the rollout).
	OnSiteFailure string
}

// Validate returns nil for a usable strategy and otherwise every problem joined,
// each wrapping ErrInvalidStrategy and naming the field.
func (s Strategy) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidStrategy}, args...)...))
	}
	if s.Canary < 0 {
		bad("canary %d is negative", s.Canary)
	}
	if s.Canary > 0 && len(s.CanarySites) > 0 {
		bad("canary and canary_sites exclude each other")
	}
	seen := map[string]bool{}
	for i, site := range s.CanarySites {
		if err := events.ValidateSite(site); err != nil {
			bad("canary_sites[%d]: %v", i, err)
		} else if seen[site] {
			bad("canary_sites: %s listed twice", site)
		}
		seen[site] = true
	}
	if s.WaveSize < 0 {
		bad("wave_size %d is negative", s.WaveSize)
	}
	if s.WavePercent < 0 || s.WavePercent > 100 {
		bad("wave_percent %d is not between 0 and 100", s.WavePercent)
	}
	if s.WaveSize > 0 && s.WavePercent > 0 {
		bad("wave_size and wave_percent exclude each other")
	}
	if s.Parallelism < 0 {
		bad("parallelism %d is negative", s.Parallelism)
	}
	if s.Bake < 0 {
		bad("bake %s is negative", s.Bake)
	}
	if s.SiteDeadline < 0 {
		bad("site_deadline %s is negative", s.SiteDeadline)
	}
	if s.MaxFailed < 0 {
		bad("max_failed %d is negative", s.MaxFailed)
	}
	if s.MaxUnreachable < 0 {
		bad("max_unreachable %d is negative", s.MaxUnreachable)
	}
	if s.WaveMaxFailed < NoLimit {
		bad("wave_max_failed %d is below %d (no limit)", s.WaveMaxFailed, NoLimit)
	}
	if s.WaveMaxUnreachable < NoLimit {
		bad("wave_max_unreachable %d is below %d (no limit)", s.WaveMaxUnreachable, NoLimit)
	}
	switch s.OnFailure {
	case "", OnFailureRollback, OnFailurePause:
	default:
		bad("on_failure %q is not %s or %s", s.OnFailure, OnFailureRollback, OnFailurePause)
	}
	switch s.OnSiteFailure {
	case "", OnSiteFailureRestore, OnSiteFailureKeep:
	default:
		bad("on_site_failure %q is not %s or %s", s.OnSiteFailure, OnSiteFailureRestore, OnSiteFailureKeep)
	}
	return errors.Join(errs...)
}

// withDefaults fills the fields whose zero value means a default.
func (s Strategy) withDefaults() Strategy {
	if s.SiteDeadline == 0 {
		s.SiteDeadline = DefaultSiteDeadline
	}
	if s.OnFailure == "" {
		s.OnFailure = OnFailureRollback
	}
	if s.OnSiteFailure == "" {
		s.OnSiteFailure = OnSiteFailureRestore
	}
	return s
}

// strategyJSON is Strategy on the wire: durations as Go duration strings ("30s").
type strategyJSON struct {
	Canary             int      `json:"canary,omitempty"`
	CanarySites        []string `json:"canary_sites,omitempty"`
	WaveSize           int      `json:"wave_size,omitempty"`
	WavePercent        int      `json:"wave_percent,omitempty"`
	Parallelism        int      `json:"parallelism,omitempty"`
	Bake               duration `json:"bake,omitempty"`
	SiteDeadline       duration `json:"site_deadline,omitempty"`
	MaxFailed          int      `json:"max_failed"`
	MaxUnreachable     int      `json:"max_unreachable"`
	WaveMaxFailed      int      `json:"wave_max_failed"`
	WaveMaxUnreachable int      `json:"wave_max_unreachable"`
	OnFailure          string   `json:"on_failure,omitempty"`
	OnSiteFailure      string   `json:"on_site_failure,omitempty"`
}

// MarshalJSON encodes the strategy with snake_case names and durations as Go
// duration strings.
func (s Strategy) MarshalJSON() ([]byte, error) {
	return json.Marshal(strategyJSON{
		Canary: s.Canary, CanarySites: s.CanarySites, WaveSize: s.WaveSize, WavePercent: s.WavePercent,
		Parallelism: s.Parallelism, Bake: duration(s.Bake), SiteDeadline: duration(s.SiteDeadline),
		MaxFailed: s.MaxFailed, MaxUnreachable: s.MaxUnreachable,
		WaveMaxFailed: s.WaveMaxFailed, WaveMaxUnreachable: s.WaveMaxUnreachable, OnFailure: s.OnFailure,
		OnSiteFailure: s.OnSiteFailure,
	})
}

// UnmarshalJSON decodes what MarshalJSON writes; a duration may also be a number
// of nanoseconds. It returns an error for unknown fields.
func (s *Strategy) UnmarshalJSON(b []byte) error {
	var j strategyJSON
	if err := strictjson.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decode strategy: %w", err)
	}
	*s = Strategy{
		Canary: j.Canary, CanarySites: j.CanarySites, WaveSize: j.WaveSize, WavePercent: j.WavePercent,
		Parallelism: j.Parallelism, Bake: time.Duration(j.Bake), SiteDeadline: time.Duration(j.SiteDeadline),
		MaxFailed: j.MaxFailed, MaxUnreachable: j.MaxUnreachable,
		WaveMaxFailed: j.WaveMaxFailed, WaveMaxUnreachable: j.WaveMaxUnreachable, OnFailure: j.OnFailure,
		OnSiteFailure: j.OnSiteFailure,
	}
	return nil
}

// duration is a time.Duration that reads and writes "1m30s" (and reads nanoseconds).
type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = duration(v)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("duration %s is neither a string like \"30s\" nor nanoseconds", b)
	}
	*d = duration(n)
	return nil
}

// cutWaves assigns a wave to each site in order (the sites not skipped), and
// returns the wave of each site (counted from 1) and the number of waves; canary
// reports whether wave 1 is a canary wave. Named canary sites absent from sites are ignored (they
// were skipped); Start checks beforehand that they are in the plan.
func cutWaves(sites []string, s Strategy) (waveOf map[string]int, waves int, canary bool) {
	waveOf = make(map[string]int, len(sites))
	var rest []string
	switch {
	case len(s.CanarySites) > 0:
		for _, site := range sites {
			if slices.Contains(s.CanarySites, site) {
				waveOf[site] = 1
				canary = true
			} else {
				rest = append(rest, site)
			}
		}
	case s.Canary > 0:
		n := min(s.Canary, len(sites))
		for _, site := range sites[:n] {
			waveOf[site] = 1
		}
		canary = n > 0
		rest = sites[n:]
	default:
		rest = sites
	}
	if canary {
		waves = 1
	}
	if len(rest) == 0 {
		return waveOf, waves, canary
	}
	size := len(rest)
	switch {
	case s.WaveSize > 0:
		size = s.WaveSize
	case s.WavePercent > 0:
		size = max(1, (len(rest)*s.WavePercent+99)/100)
	}
	for i, site := range rest {
		waveOf[site] = waves + 1 + i/size
	}
	waves += (len(rest) + size - 1) / size
	return waveOf, waves, canary
}
