package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/asterisk"
	"github.com/pbxfleet/pbxfleet/internal/intent"
	"github.com/pbxfleet/pbxfleet/internal/textclip"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
)

// Change says how a node's desired state compares with the one it has now.
type Change string

// The three kinds of change of a node.
const (
	// ChangeNew: the node has no desired state yet.
	ChangeNew Change = "new"
	// ChangeChanged: the intent differs from the current one; the revision goes up.
	ChangeChanged Change = "changed"
	// ChangeUnchanged: the intent is the current one; the revision stays.
	ChangeUnchanged Change = "unchanged"
)

// Plan is what publishing a spec would do: per site the relation table, per node
// the desired state, the files it renders to and the change against now. It holds
// the secrets (the desired states carry them); show it through Report, which
// masks them.
type Plan struct {
	// Hash identifies the plan's content: sha256 over every node's intent (see
	// BuildPlan). Each Desired carries it as PlanHash.
	Hash string
	// Sites are in spec order.
	Sites []SitePlan
	// Removed are the nodes that have a desired state now but no site in the
	// fleet file any more, sorted. The plan does not touch them.
	Removed []string
	// Warnings are the spec's warnings.
	Warnings []Problem
}

// SitePlan is the plan of one site.
type SitePlan struct {
	// Site is the resolved site (its Trunk holds the secret).
	Site Site
	// Relations is the table of docs/asterisk.md#how-the-two-sides-relate filled from the rendered files.
	Relations []Relation
	// Nodes are the PBX node, then the OML node.
	Nodes []NodePlan
}

// NodePlan is the plan of one node.
type NodePlan struct {
	// Role is events.RolePBX or events.RoleOML.
	Role string
	// Change compares Desired with the node's current desired state.
	Change Change
	// Changes name the intent fields that differ, e.g. "pbx_port: 5060 -> 5070";
	// the secret only ever appears as "secret changed".
	Changes []string
	// CurrentRevision is the node's revision now, 0 when it has none.
	CurrentRevision uint64
	// Desired is the node's desired state: the current revision when unchanged,
	// the next one otherwise.
	Desired events.Desired
	// Rendered is what the node's agent will write for Desired.
	Rendered asterisk.Rendered
}

// BuildPlan plans spec against current, the desired states the fleet has now
// keyed by node id (nil or empty for a fleet that has none). Per site it renders
// both sides with the agents' renderer at the node's next revision and checks
// the relations of docs/asterisk.md#how-the-two-sides-relate on the rendered text. The plan hash is sha256
// over "pbxfleet-plan-v1", then each node id and its intent as JSON, in node
// order; revisions are left out, so the same fleet file gives the same hash
// whatever the fleet runs now. It returns an error wrapping ErrBadCurrent for a
// current state filed under the wrong key, and wrapping ErrRelationBroken (with
// the site and the row) if a rendered pair breaks a relation.
func BuildPlan(spec *Spec, current map[string]events.Desired) (*Plan, error) {
	for key, d := range current {
		if _, _, err := events.ParseNodeID(key); err != nil {
			return nil, fmt.Errorf("build plan: %w: key %q: %w", ErrBadCurrent, textclip.Value(key), err)
		}
		if d.Node != key {
			return nil, fmt.Errorf("build plan: %w: key %q holds the state of node %q", ErrBadCurrent, textclip.Value(key), textclip.Value(d.Node))
		}
	}

	plan := &Plan{Sites: make([]SitePlan, 0, len(spec.Sites)), Warnings: slices.Clone(spec.Warnings)}
	intents := make([]events.Trunk, len(spec.Sites))
	for i, site := range spec.Sites {
		intents[i] = intent.ToEvent(site.Trunk)
	}
	plan.Hash = planHash(spec.Sites, intents)

	for _, site := range spec.Sites {
		sp := SitePlan{Site: site, Nodes: make([]NodePlan, 0, 2)}
		for _, role := range []string{events.RolePBX, events.RoleOML} {
			np, err := planNode(site, role, current, plan.Hash)
			if err != nil {
				return nil, fmt.Errorf("build plan: %w", err)
			}
			sp.Nodes = append(sp.Nodes, np)
		}
		sp.Relations = relations(site, sp.Nodes[0].Rendered, sp.Nodes[1].Rendered)
		for _, r := range sp.Relations {
			if !r.Holds {
				return nil, fmt.Errorf("build plan: site %s: %w: %s (%s)", site.ID, ErrRelationBroken, r.Name, r.Why)
			}
		}
		plan.Sites = append(plan.Sites, sp)
	}

	inFile := make(map[string]bool, len(spec.File.Sites))
	for _, s := range spec.File.Sites {
		inFile[s.ID] = true
	}
	for node := range current {
		if site, _, _ := events.ParseNodeID(node); !inFile[site] {
			plan.Removed = append(plan.Removed, node)
		}
	}
	sort.Strings(plan.Removed)
	return plan, nil
}

// planNode compares a node's intent with its current state, picks the revision
// and renders the node's side at that revision.
func planNode(site Site, role string, current map[string]events.Desired, hash string) (NodePlan, error) {
	node := events.NodeID(site.ID, role)
	// Each node gets its own copy of the intent: the two desired states share no memory.
	in := intent.ToEvent(site.Trunk)
	np := NodePlan{Role: role, Change: ChangeNew}
	rev := uint64(1)
	if cur, ok := current[node]; ok {
		np.CurrentRevision = cur.Revision
		np.Changes = diffIntent(cur.Trunk, in)
		rev = cur.Revision
		switch {
		case len(np.Changes) > 0:
			np.Change = ChangeChanged
			rev++
		case cur.Revision == 0:
			// A current state without a revision is malformed; republish it as 1.
			np.Change, rev = ChangeChanged, 1
		default:
			np.Change = ChangeUnchanged
		}
	}
	np.Desired = events.Desired{Node: node, Revision: rev, PlanHash: hash, Trunk: in}

	t := site.Trunk
	t.Revision = rev
	var err error
	if role == events.RolePBX {
		np.Rendered, err = asterisk.RenderPBX(t, asterisk.DefaultPBXFiles())
	} else {
		np.Rendered, err = asterisk.RenderOML(t, asterisk.DefaultOMLFiles())
	}
	if err != nil {
		return np, fmt.Errorf("node %s: %w", node, err)
	}
	return np, nil
}

// planHash hashes the intents in node order (see BuildPlan).
func planHash(sites []Site, intents []events.Trunk) string {
	type entry struct {
		node string
		i    int
	}
	nodes := make([]entry, 0, 2*len(sites))
	for i, s := range sites {
		nodes = append(nodes, entry{events.NodeID(s.ID, events.RolePBX), i}, entry{events.NodeID(s.ID, events.RoleOML), i})
	}
	sort.Slice(nodes, func(a, b int) bool { return nodes[a].node < nodes[b].node })
	h := sha256.New()
	h.Write([]byte("pbxfleet-plan-v1\n"))
	for _, n := range nodes {
		// Marshalling a struct of strings, ints and slices cannot fail.
		js, _ := json.Marshal(intents[n.i])
		h.Write([]byte(n.node))
		h.Write([]byte{'\n'})
		h.Write(js)
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// diffIntent names the fields of the intent that differ, in the order of
// events.Trunk, by their JSON names. The secret is reported as "secret changed"
// and never shown; a current state whose secret is sealed cannot be compared on
// the secret, so only its other fields are.
func diffIntent(old, cur events.Trunk) []string {
	var out []string
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(cur)
	tt := ov.Type()
	for i := range tt.NumField() {
		f := tt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		a, b := ov.Field(i), nv.Field(i)
		switch f.Name {
		case "SealedSecret", "SealedBy":
			continue
		case "Secret":
			if old.SealedSecret == "" && old.Secret != cur.Secret {
				out = append(out, "secret changed")
			}
			continue
		}
		if sameValue(a, b) {
			continue
		}
		out = append(out, describeChange(name, a, b))
	}
	return out
}

// sameValue compares two field values, taking a nil and an empty slice as equal
// (JSON omits both).
func sameValue(a, b reflect.Value) bool {
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

func describeChange(name string, a, b reflect.Value) string {
	switch a.Kind() {
	case reflect.Slice:
		if a.Type().Elem().Kind() == reflect.String {
			return fmt.Sprintf("%s: [%s] -> [%s]", name, joinValues(a), joinValues(b))
		}
		if a.Len() == b.Len() {
			return name + ": entries changed"
		}
		return fmt.Sprintf("%s: %d -> %d entries", name, a.Len(), b.Len())
	case reflect.String:
		return fmt.Sprintf("%s: %q -> %q", name, textclip.Value(a.String()), textclip.Value(b.String()))
	}
	return fmt.Sprintf("%s: %v -> %v", name, a.Interface(), b.Interface())
}

func joinValues(v reflect.Value) string {
	parts := make([]string, v.Len())
	for i := range parts {
		parts[i] = v.Index(i).String()
	}
	return strings.Join(parts, ", ")
}

// RolloutPlan is what the orchestrator rolls out of p: per site, each node's
// trunk intent, under p's hash.
func (p *Plan) RolloutPlan() orchestrator.Plan {
	op := orchestrator.Plan{Hash: p.Hash}
	for _, sp := range p.Sites {
		t := orchestrator.Target{Site: sp.Site.ID, Nodes: map[string]events.Trunk{}}
		for _, np := range sp.Nodes {
			t.Nodes[np.Role] = np.Desired.Trunk
		}
		op.Targets = append(op.Targets, t)
	}
	return op
}
