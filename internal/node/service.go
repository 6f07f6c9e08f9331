package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/release"
	"github.com/pbxfleet/pbxfleet/internal/strictjson"
)

// CheckReport is the answer of the check endpoint and of `pbx-node check`.
type CheckReport struct {
	Node     string            `json:"node"`
	Revision uint64            `json:"revision"`
	Passed   bool              `json:"passed"`
	Reason   string            `json:"reason,omitempty"`
	Checks   []events.Check    `json:"checks"`
	Trunk    events.TrunkState `json:"trunk"`
	Probe    *events.Probe     `json:"probe,omitempty"`
}

// CheckRequest is the body of a check request: {"probe":true} runs the checks
// and places the probe call, {"probe":false} only the checks. The field is
// required: an empty body (a delivery nobody meant as a request) runs nothing.
type CheckRequest struct {
	// Probe places the probe call too.
	Probe *bool `json:"probe"`
}

// DecodeCheckRequest reads a check request strictly: one JSON object with the
// probe field and no other. It returns an error saying what is wrong.
func DecodeCheckRequest(data []byte) (CheckRequest, error) {
	const want = `body must be {"probe":true} or {"probe":false}`
	var cr CheckRequest
	if len(bytes.TrimSpace(data)) == 0 {
		return cr, fmt.Errorf("check request: empty body: %s", want)
	}
	if err := strictjson.Unmarshal(data, &cr); err != nil {
		return cr, fmt.Errorf("check request: %s: %w", want, err)
	}
	if cr.Probe == nil {
		return cr, fmt.Errorf("check request: no probe field: %s", want)
	}
	return cr, nil
}

// clientOnly wraps a handler so that it acts only on requests a client sent:
// what JetStream delivers or republishes to an endpoint (see
// events.FromJetStream) is dropped unanswered, whoever chose the subject.
func (a *Agent) clientOnly(h micro.Handler) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		if events.FromJetStream(req.Reply(), req.Headers()) {
			a.log.Warn("refused a request delivered by JetStream", "subject", req.Subject(), "reply", req.Reply())
			return
		}
		h.Handle(req)
	})
}

// Check verifies the applied trunk now, without changing anything: the trunk
// object, a forced qualify, the managed dialplan, (when probe) a probe call,
// and the side's objects when it has them.
func (a *Agent) Check(ctx context.Context, probe bool) (CheckReport, error) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	a.mu.Lock()
	loaded, j := a.loaded, a.journal
	a.mu.Unlock()
	if !loaded {
		// `pbx-node check` runs beside the agent's own process: read the journal,
		// never recover from it, or a check would undo an apply in flight.
		var err error
		if j, err = a.state.loadJournal(); err != nil {
			return CheckReport{}, err
		}
	}
	applied := j.Applied
	rep := CheckReport{Node: a.node, Revision: applied.Revision}
	if j.InFlight != nil && !loaded {
		rep.Reason = fmt.Sprintf("revision %d is being applied (%s); check again when it is done", j.InFlight.Revision, j.InFlight.Phase)
		rep.Trunk = events.TrunkState{State: "applying"}
		return rep, nil
	}
	if applied.Trunk == nil {
		rep.Reason = "no revision applied on this node yet"
		rep.Trunk = events.TrunkState{State: "none"}
		return rep, nil
	}
	v := a.ver.verify(ctx, *applied.Trunk, applied.Revision, probe)
	if a.objects != nil {
		// The objects (OMniLeads' trunk, routes and inbound routes) are checked
		// too: an inbound route deleted in OMniLeads' UI shows here, by DID.
		v.Checks = append(v.Checks, a.objects.Verify(ctx, *applied.Trunk)...)
	}
	rep.Checks, rep.Trunk, rep.Probe, rep.Passed = v.Checks, v.Trunk, v.Probe, v.Passed()
	if fail, ok := v.FirstFailure(); ok {
		rep.Reason = fail.Name + ": " + fail.Detail
	}
	return rep, nil
}

// startService registers the node's NATS service (nats.go/micro) so that
// `nats micro ls` lists every agent and `nats req pbxfleet.node.<site>.<role>.check '{"probe":true}'`
// runs its checks.
func (a *Agent) startService() (micro.Service, error) {
	ver := "0.0.0" // micro wants plain semver; a dev build reports none
	if v, err := release.Parse(a.version); err == nil {
		ver = v.String()
	}
	svc, err := micro.AddService(a.nc, micro.Config{
		Name:        events.ServiceNode,
		Version:     ver,
		Description: fmt.Sprintf("pbxfleet %s for %s", a.side.Program, a.node),
		Metadata:    map[string]string{"node": a.node, "site": a.site, "role": a.role, "program": a.side.Program},
	})
	if err != nil {
		return nil, fmt.Errorf("start service %s: %w", events.ServiceNode, err)
	}
	g := svc.AddGroup(events.NodeServiceGroup(a.site, a.role))
	checkH := micro.ContextHandler(context.Background(), func(ctx context.Context, req micro.Request) {
		cr, err := DecodeCheckRequest(req.Data())
		if err != nil {
			_ = req.Error("400", err.Error(), nil)
			return
		}
		rep, err := a.Check(ctx, *cr.Probe)
		if err != nil {
			_ = req.Error("500", err.Error(), nil)
			return
		}
		_ = req.RespondJSON(rep)
	})
	statusH := micro.ContextHandler(context.Background(), func(ctx context.Context, req micro.Request) {
		_ = req.RespondJSON(a.Status(ctx))
	})
	err = errors.Join(
		g.AddEndpoint(events.EndpointCheck, a.clientOnly(checkH), micro.WithEndpointMetadata(map[string]string{"description": "verify the trunk now: object, qualify, dialplan, probe call"})),
		g.AddEndpoint(events.EndpointStatus, a.clientOnly(statusH), micro.WithEndpointMetadata(map[string]string{"description": "applied revision, trunk state, drift"})),
		g.AddEndpoint(events.EndpointProbe, a.clientOnly(a.probeHandler()), micro.WithEndpointMetadata(map[string]string{"description": "the orchestrator's probe order for the revision this node awaits a probe for"})),
	)
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("add endpoints: %w", err)
	}
	return svc, nil
}

// ApplyCurrent fetches the node's current desired state once, applies it (unless
// already handled), publishes the result and status, and returns the result. It
// backs `--once`. ok is false when there was nothing new to apply.
func (a *Agent) ApplyCurrent(ctx context.Context) (res events.Result, ok bool, err error) {
	if a.nc == nil {
		return res, false, fmt.Errorf("apply current %s: no NATS connection", a.node)
	}
	if err := a.init(ctx); err != nil {
		return res, false, err
	}
	js, err := jetstream.New(a.nc)
	if err != nil {
		return res, false, fmt.Errorf("apply current %s: %w", a.node, err)
	}
	h, err := tryOpen(ctx, js)
	if err != nil {
		return res, false, fmt.Errorf("apply current %s: %w", a.node, err)
	}
	// The service takes the probe order of a revision put by a rollout.
	svc, err := a.startService()
	if err != nil {
		return res, false, fmt.Errorf("apply current %s: %w", a.node, err)
	}
	defer func() { _ = svc.Stop() }()
	a.flushOutbox(ctx, h)
	e, err := h.desired.Get(ctx, a.node)
	if err != nil {
		return res, false, fmt.Errorf("apply current %s: get desired state: %w", a.node, err)
	}
	res, ok = a.handle(ctx, h, e.Value())
	return res, ok, nil
}
