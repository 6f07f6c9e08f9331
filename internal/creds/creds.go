// Package creds makes and loads the credentials of a fleet: one nkey user per
// node (allowed exactly its own key, result, status and endpoints, see
// bus.NodePermissions), one for the orchestrator and one for the operator, plus
// a curve key per node for sealing its trunk secret (internal/seal) and one for
// the orchestrator that seals them.
//
// Generate writes, in one directory: the seeds (<node>.nk, <node>.xk,
// orchestrator.nk, orchestrator.xk, operator.nk, mode 0600, never printed), the
// public half in auth.json (what `pbxfleet serve --auth DIR` loads with Load),
// and nats-server.conf, the same users and permissions for an external
// nats-server. Running it again keeps every existing key.
package creds

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/bus"
	"github.com/pbxfleet/pbxfleet/internal/strictjson"
)

// File names in a credentials directory.
const (
	// AuthFile holds the public keys (a Set as JSON).
	AuthFile = "auth.json"
	// ServerConfFile is the authorization block for an external nats-server.
	ServerConfFile = "nats-server.conf"
	// Orchestrator names the orchestrator's seed files (orchestrator.nk, .xk).
	Orchestrator = "orchestrator"
	// Operator names the operator's seed file (operator.nk).
	Operator = "operator"
	// UserSeedExt ends an nkey user seed file.
	UserSeedExt = ".nk"
	// CurveSeedExt ends a curve (sealing) seed file.
	CurveSeedExt = ".xk"
)

// SetVersion is the only auth.json version this package writes and reads.
const SetVersion = 1

// maxAuthBytes bounds what Load reads: 10,000 sites take about 2.5 MiB.
const maxAuthBytes = 32 << 20

// Identity is the public half of one identity's keys.
type Identity struct {
	// User is the nkey user public key (U...) the server authenticates.
	User string `json:"user"`
	// Curve is the public curve key (X...) secrets are sealed to or by; empty
	// for the operator.
	Curve string `json:"curve,omitempty"`
}

// Set is the public half of a fleet's credentials, the content of auth.json.
type Set struct {
	// Version is SetVersion.
	Version int `json:"version"`
	// Operator has full access.
	Operator Identity `json:"operator"`
	// Orchestrator is the orchestrator and control plane; its curve key seals
	// the nodes' secrets.
	Orchestrator Identity `json:"orchestrator"`
	// Nodes are the node agents, by node id (<site>.<role>).
	Nodes map[string]Identity `json:"nodes"`
}

// Load reads DIR/auth.json. It returns an error wrapping ErrInvalidSet (naming
// the node and the field) when the file is malformed, or the I/O error.
func Load(dir string) (*Set, error) {
	path := filepath.Join(dir, AuthFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load credentials: %w", err)
	}
	defer f.Close()
	var s Set
	// A file cut at the limit fails to decode.
	if err := strictjson.Decode(io.LimitReader(f, maxAuthBytes), &s); err != nil {
		return nil, fmt.Errorf("load credentials %s: %w: %w", path, ErrInvalidSet, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("load credentials %s: %w", path, err)
	}
	return &s, nil
}

// Validate returns every problem of the set, each wrapping ErrInvalidSet, or nil.
func (s *Set) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidSet}, args...)...))
	}
	if s.Version != SetVersion {
		bad("version %d (want %d)", s.Version, SetVersion)
	}
	seen := map[string]string{}
	checkUser := func(who, key string) {
		if !nkeys.IsValidPublicUserKey(key) {
			bad("%s.user: not an nkey user public key", who)
			return
		}
		if other, dup := seen[key]; dup {
			bad("%s.user: the same key as %s", who, other)
			return
		}
		seen[key] = who
	}
	checkCurve := func(who, key string) {
		if !nkeys.IsValidPublicCurveKey(key) {
			bad("%s.curve: not a curve public key", who)
		}
	}
	checkUser(Operator, s.Operator.User)
	if s.Operator.Curve != "" {
		checkCurve(Operator, s.Operator.Curve)
	}
	checkUser(Orchestrator, s.Orchestrator.User)
	checkCurve(Orchestrator, s.Orchestrator.Curve)
	for _, id := range s.NodeIDs() {
		if _, _, err := events.ParseNodeID(id); err != nil {
			bad("nodes[%s]: %v", id, err)
			continue
		}
		who := "nodes[" + id + "]"
		checkUser(who, s.Nodes[id].User)
		checkCurve(who, s.Nodes[id].Curve)
	}
	return errors.Join(errs...)
}

// NodeIDs returns the node ids of the set, sorted.
func (s *Set) NodeIDs() []string { return slices.Sorted(maps.Keys(s.Nodes)) }

// CurveKey returns the public curve key of node (the recipient its trunk secret
// is sealed to), or "" when the set has no such node.
func (s *Set) CurveKey(node string) string { return s.Nodes[node].Curve }

// NkeyUsers returns the server's nkey users: the operator, the orchestrator and
// every node (sorted by id), each with its permissions from internal/bus. Each
// call returns fresh values, since the server keeps and amends what it is given.
func (s *Set) NkeyUsers() []*server.NkeyUser {
	users := []*server.NkeyUser{
		{Nkey: s.Operator.User, Permissions: bus.OperatorPermissions()},
		{Nkey: s.Orchestrator.User, Permissions: bus.OrchestratorPermissions()},
	}
	for _, id := range s.NodeIDs() {
		site, role, err := events.ParseNodeID(id)
		if err != nil {
			continue // Load and Validate refuse such a set; never grant a malformed id
		}
		users = append(users, &server.NkeyUser{Nkey: s.Nodes[id].User, Permissions: bus.NodePermissions(site, role)})
	}
	return users
}

// ServerOptions returns the bus.EmbeddedConfig.Options hook that turns on
// authorization with NkeyUsers: from then on only these keys connect.
func (s *Set) ServerOptions() func(*server.Options) {
	return func(o *server.Options) {
		o.Nkeys = s.NkeyUsers()
	}
}
