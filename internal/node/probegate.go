package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/wait"
)

// probeGate hands the orchestrator's probe order (events.ProbeOrder, on the
// node's probe endpoint) to the apply that awaits it. An apply of a ProbeOnOrder
// desired state opens the gate for its revision once its checks passed, reports
// OutcomeAwaitingProbe, and waits; the endpoint accepts only an order for that
// rollout and revision. The node thus probes only once the far side runs the
// revision too, and never again for the same revision.
type probeGate struct {
	mu      sync.Mutex
	open    *awaiting // nil: no apply awaits a probe
	lastRev uint64    // the last revision the gate was open for, once closed
}

type awaiting struct {
	rollout string
	rev     uint64
	orders  chan events.ProbeOrder // capacity 1: the first order wins
}

// await opens the gate for rollout and rev; the caller must close it.
func (g *probeGate) await(rollout string, rev uint64) <-chan events.ProbeOrder {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = &awaiting{rollout: rollout, rev: rev, orders: make(chan events.ProbeOrder, 1)}
	return g.open.orders
}

// close ends the wait; later orders for the revision are answered as done.
func (g *probeGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open != nil {
		g.lastRev = g.open.rev
	}
	g.open = nil
}

// offer gives o to the awaiting apply when it is the order it waits for.
func (g *probeGate) offer(o events.ProbeOrder) events.ProbeAnswer {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.open != nil && g.open.rollout == o.Rollout && g.open.rev == o.Revision:
		select {
		case g.open.orders <- o:
			return events.ProbeAnswer{Accepted: true, Detail: fmt.Sprintf("%s for revision %d taken", o.Action, o.Revision)}
		default:
			return events.ProbeAnswer{Accepted: true, Detail: fmt.Sprintf("an order for revision %d was already taken", o.Revision)}
		}
	case g.open == nil && g.lastRev >= o.Revision:
		return events.ProbeAnswer{Done: true, Detail: fmt.Sprintf("revision %d is already finished", o.Revision)}
	case g.open != nil:
		return events.ProbeAnswer{Detail: fmt.Sprintf("awaiting a probe order for revision %d of rollout %s, not this one", g.open.rev, g.open.rollout)}
	}
	return events.ProbeAnswer{Detail: "not awaiting a probe order"}
}

// probeHandler answers the probe endpoint. Only a well-formed order for the
// revision the node awaits does anything: a request whose body is anything else
// (an empty body, a JetStream acknowledgement a client made the server publish
// here) is refused with 400.
func (a *Agent) probeHandler() micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		o, err := events.DecodeProbeOrder(req.Data())
		if err != nil {
			_ = req.Error("400", err.Error(), nil)
			return
		}
		ans := a.gate.offer(o)
		a.log.Info("probe order", "rollout", o.Rollout, "revision", o.Revision, "action", o.Action, "accepted", ans.Accepted, "detail", ans.Detail)
		_ = req.RespondJSON(ans)
	})
}

// Why an apply waiting for its probe order stops waiting without probing.
var (
	errProbeCancelled  = errors.New("probe cancelled")
	errProbeNoOrder    = errors.New("no probe order")
	errProbeSuperseded = errors.New("superseded")
)

// waitForOrder waits for the probe order of the revision, for at most the
// probe-wait deadline. It returns nil when the order says probe; otherwise an
// error saying why not (cancelled by the orchestrator, superseded by a newer
// revision put on the node's key, no order in time, or ctx ended). A put that
// comes meanwhile is given back to Run when the wait ends. With the bus (h),
// it publishes the outbox every status interval while it waits: the
// orchestrator orders the probe only once it has read the awaiting_probe
// report, and a report whose publish failed (a server lost, a leader election)
// would otherwise wait in the outbox until the wait ended without an order.
func (a *Agent) waitForOrder(ctx context.Context, h *busHandles, orders <-chan events.ProbeOrder, d events.Desired) error {
	timer := time.NewTimer(a.cfg.Deadlines.ProbeWait)
	defer timer.Stop()
	retry := time.NewTimer(wait.Jitter(a.cfg.StatusInterval))
	defer retry.Stop()
	var retryC <-chan time.Time
	if h != nil {
		retryC = retry.C
	}
	var held []byte
	defer func() {
		if held != nil {
			a.offerPut(held)
		}
	}()
	for {
		select {
		case o := <-orders:
			if o.Action == events.ProbeActionCancel {
				return fmt.Errorf("%w by the orchestrator: %s", errProbeCancelled, o.Reason)
			}
			return nil
		case data := <-a.puts:
			held = data
			if nd, err := events.DecodeDesired(data, nil, a.node); err == nil && nd.Revision > d.Revision {
				return fmt.Errorf("%w: revision %d came before the probe order", errProbeSuperseded, nd.Revision)
			}
		case <-retryC:
			a.flushOutbox(context.WithoutCancel(ctx), h)
			retry.Reset(wait.Jitter(a.cfg.StatusInterval))
		case <-timer.C:
			return fmt.Errorf("%w within %s: the orchestrator orders the probe once every node of the site has applied; the far side did not report, or no orchestrator is driving revision %d",
				errProbeNoOrder, a.cfg.Deadlines.ProbeWait, d.Revision)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
