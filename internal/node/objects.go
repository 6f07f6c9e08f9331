package node

import (
	"context"
	"encoding/json"

	"github.com/pbxfleet/pbxfleet/events"
)

// Objects manages what a side keeps outside its managed files: on OMniLeads in
// objects mode, the SIP trunk, the outbound route and the inbound routes that
// live in OMniLeads' own database (and Redis) and that OMniLeads turns into
// Asterisk configuration itself. The agent calls it at fixed points of an apply,
// so objects are kept, changed, verified and put back exactly like the files:
//
//	Snapshot  before anything changes (kept in the journal, for a rollback or a
//	          restart after a crash)
//	Apply     after the managed files are written, before the reload; its
//	          checks are reported after the side's own checks passed, before
//	          the probe
//	Verify    for the node's check service (nothing changed them since)
//	Restore   on rollback, and at start when an apply was interrupted
//
// An agent without Objects (the default, and every Issabel agent) manages files
// only. Every method must be idempotent: after a crash it may run again.
type Objects interface {
	// OwnsTrunk reports whether the objects hold the trunk itself, so the agent
	// must not write the side's trunk file (it empties one left from before).
	OwnsTrunk() bool
	// Snapshot returns the current definitions of the objects t would change
	// (the names they go by come from t), opaque to the agent, or an error when
	// they cannot be read (nothing was changed).
	Snapshot(ctx context.Context, t events.Trunk) (json.RawMessage, error)
	// Apply creates or updates the objects for t and returns their checks as
	// the apply left them, one per fact (reading them again after the reload
	// would run OMniLeads' shell once more for the same rows); secret is the
	// trunk secret in clear (never logged, never returned in an error).
	Apply(ctx context.Context, t events.Trunk, secret string) ([]events.Check, error)
	// Verify reads the objects again and checks that they exist and agree
	// with t, returning one check per fact (the node's check service).
	Verify(ctx context.Context, t events.Trunk) []events.Check
	// Restore puts back a snapshot taken before an apply.
	Restore(ctx context.Context, snapshot json.RawMessage) error
}

// RouteProber is an Objects whose outbound route the agent proves with a call,
// after the trunk probe: RouteProbeNumber returns the number to dial into the
// route (asterisk.RouteProbeDialplan) so that the route sends t's probe number
// to the far side unchanged, or false when the route cannot (or the probe is
// off).
type RouteProber interface {
	RouteProbeNumber(t events.Trunk) (string, bool)
}

// CheckRouteProbe names the route probe's check.
const CheckRouteProbe = "oml_route_probe"

// WithObjects makes the agent manage objs beside its files.
func WithObjects(objs Objects) Option { return func(a *Agent) { a.objects = objs } }
