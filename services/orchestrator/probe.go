package orchestrator

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/textclip"
)

// ProbeState is where a node's probe call stands for the revision it is
// applying (its Revision, or its RestoreRevision once restoring). The rollout
// puts every desired state with events.ProbeOnOrder: a node applies, checks and
// reports awaiting_probe, and places its one probe call only when the
// orchestrator orders it, once every node of the site runs the revisions the
// rollout put. A probe against a far side that has not applied yet would fail,
// and every failed call is an authentication failure the far side's fail2ban
// counts.
type ProbeState struct {
	// Revision is the revision the node awaits the order for.
	Revision uint64 `json:"revision"`
	// ReadyAt is when the node reported awaiting_probe (the latest report: a
	// node that restarted while waiting reports again, and is ordered again).
	ReadyAt time.Time `json:"ready_at"`
	// OrderedAt is when the node took the order; Action is the order,
	// events.ProbeActionProbe or events.ProbeActionCancel.
	OrderedAt *time.Time `json:"ordered_at,omitempty"`
	Action    string     `json:"action,omitempty"`
}

// probeOrderTimeout bounds one probe order request; a lost one is sent again
// on the next pass.
const probeOrderTimeout = 2 * time.Second

// orderRetry is how soon a pass runs again after an order was not taken.
const orderRetry = time.Second

// expected returns the revision the rollout expects the node to be applying,
// and whether a restore is decided but not put yet (the node's next revision
// is not known to it yet).
func (n NodeState) expected() (rev uint64, restoring bool) {
	switch {
	case n.RestoreRevision != 0 && n.RestoreNote == "" && n.RestoreAt != nil:
		return n.RestoreRevision, false
	case n.RestoreRevision != 0 && n.RestoreNote == "":
		return 0, true
	case n.Put && !n.UpToDate:
		return n.Revision, false
	}
	return 0, false
}

// final returns the node's final result for rev, if any.
func (n NodeState) final(rev uint64) *NodeResult {
	switch {
	case rev != 0 && rev == n.RestoreRevision:
		return n.Restore
	case rev == n.Revision:
		return n.Result
	}
	return nil
}

// foldAwaiting records an awaiting_probe result on its node.
func foldAwaiting(n *NodeState, res events.Result) {
	rev := res.Revision
	wanted := (rev == n.Revision && n.Result == nil && !n.UpToDate) ||
		(rev == n.Revision+1 && n.Restore == nil)
	if !wanted {
		return
	}
	at := res.FinishedAt.UTC().Truncate(time.Millisecond)
	switch {
	case n.Probe == nil || n.Probe.Revision != rev:
		n.Probe = &ProbeState{Revision: rev, ReadyAt: at}
	case n.Probe.OrderedAt != nil && at.After(*n.Probe.OrderedAt):
		// Awaiting again after the order: the node restarted and lost it.
		n.Probe = &ProbeState{Revision: rev, ReadyAt: at}
	}
}

// probeWork is one order to send.
type probeWork struct {
	site, node int
	order      events.ProbeOrder
}

// orderProbes sends the probe orders the record calls for. For each site it
// looks at the revision each node is expected to apply: when every such node
// awaits its probe or already converged, the awaiting ones are ordered to
// probe; when one of them ended otherwise (or the site has an outcome already),
// the awaiting ones are ordered to cancel, so they roll back at once instead of
// waiting out their probe deadline. A node that does not take an order (down,
// restarted, not awaiting yet) gets it again on a later pass.
func (p *passState) orderProbes(ctx context.Context) error {
	r := p.r
	var todo []probeWork
	for i := range r.Sites {
		s := &r.Sites[i]
		var waiting []int
		blocked, why := false, ""
		for j, n := range s.Nodes {
			rev, restoring := n.expected()
			if restoring {
				blocked = true
				continue
			}
			if rev == 0 {
				continue
			}
			fin := n.final(rev)
			switch {
			case fin != nil && fin.Outcome != events.OutcomeConverged:
				why = fmt.Sprintf(MsgProbeCancelled, s.node(n.Role), fin.Outcome, fin.Reason)
			case fin != nil:
			case n.Probe != nil && n.Probe.Revision == rev:
				if n.Probe.OrderedAt == nil {
					waiting = append(waiting, j)
				}
			default:
				blocked = true // not reported yet
			}
		}
		if len(waiting) == 0 {
			continue
		}
		if why == "" && s.Outcome.done() && s.Outcome != SiteConverged && !p.restoringSite(*s) {
			why = fmt.Sprintf(MsgProbeSiteOver, s.Site, s.Outcome)
		}
		if why == "" && blocked {
			continue
		}
		action := events.ProbeActionProbe
		if why != "" {
			action = events.ProbeActionCancel
		}
		for _, j := range waiting {
			n := s.Nodes[j]
			todo = append(todo, probeWork{site: i, node: j, order: events.ProbeOrder{
				Rollout: r.ID, Revision: n.Probe.Revision, Action: action, Reason: textclip.Clip(why, 400)}})
		}
	}
	if len(todo) == 0 {
		return nil
	}
	taken := make([]bool, len(todo))
	err := forEach(ctx, len(todo), p.d.e.workers, func(ctx context.Context, k int) error {
		w := todo[k]
		s := r.Sites[w.site]
		taken[k] = p.d.e.sendProbeOrder(ctx, events.NodeID(s.Site, s.Nodes[w.node].Role), w.order)
		return nil
	})
	if err != nil {
		return err
	}
	retry := false
	for k, w := range todo {
		if !taken[k] {
			retry = true
			continue
		}
		n := &r.Sites[w.site].Nodes[w.node]
		t := p.now
		ps := *n.Probe // a copy: the pass's sites share pointers with the driver's
		ps.OrderedAt, ps.Action = &t, w.order.Action
		n.Probe = &ps
	}
	if retry {
		p.wakeAt(p.now.Add(orderRetry))
	}
	return nil
}

// restoringSite reports whether a site that has an outcome is being put back
// (its nodes get a restore revision): its probes are the restore's.
func (p *passState) restoringSite(s SiteState) bool {
	for _, n := range s.Nodes {
		if n.RestoreRevision != 0 && n.RestoreNote == "" {
			return true
		}
	}
	return false
}

// sendProbeOrder sends one order and reports whether the node took it (or had
// already finished that revision). Any failure is logged and retried later.
func (e *Engine) sendProbeOrder(ctx context.Context, node string, o events.ProbeOrder) bool {
	if e.nc == nil {
		return false
	}
	site, role, err := events.ParseNodeID(node)
	if err != nil {
		return false
	}
	body, err := json.Marshal(o)
	if err != nil {
		return false
	}
	rctx, cancel := context.WithTimeout(ctx, probeOrderTimeout)
	defer cancel()
	msg, err := e.nc.RequestWithContext(rctx, events.ProbeSubject(site, role), body)
	if err != nil {
		e.log.Debug("probe order not delivered; sent again on a later pass", "node", node, "revision", o.Revision, "err", err)
		return false
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		e.log.Warn("probe order refused", "node", node, "revision", o.Revision, "code", code, "error", msg.Header.Get(micro.ErrorHeader))
		return false
	}
	var ans events.ProbeAnswer
	if err := json.Unmarshal(msg.Data, &ans); err != nil {
		return false
	}
	if !ans.Accepted && !ans.Done {
		e.log.Debug("probe order not taken yet", "node", node, "revision", o.Revision, "detail", strings.TrimSpace(ans.Detail))
		return false
	}
	e.log.Info("probe ordered", "node", node, "revision", o.Revision, "action", o.Action)
	return true
}
