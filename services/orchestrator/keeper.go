package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/textclip"
	"github.com/pbxfleet/pbxfleet/internal/wait"
)

// The keeper watches the fleet between rollouts, level-triggered: what the
// desired keys say, what the nodes report. It does two things no rollout
// driver does, because they happen after a driver has finished:
//
//   - Late probes. A node that applies its key's revision after the rollout
//     that put it ended (it was cut off, its agent restarted, or the key was put
//     by hand with probe on_order) waits for a probe order nobody would send.
//     Once every node of its site runs or awaits its key's revision, the keeper
//     orders the probe (or cancels it when the far side failed), exactly as a
//     driver would.
//   - Repair. A node that does not run its key's revision although it handled
//     it, whose last attempt failed for a reason that was not the trunk's
//     credentials (the far side was down, Asterisk was not running, no probe
//     order came), is put its key's intent again as a new revision once both
//     nodes of its site report and see each other: a restore that could not
//     be confirmed completes by itself when the far side returns. Repairs run
//     as rollouts (origin "repair", one wave, failed sites kept), so they are
//     visible and locked like any other, and are spaced out per site so that a
//     site that keeps failing adds at most one failed probe per side to the
//     far side's log per RepairSpacing (fail2ban's default window is 10 min).

// Defaults of the keeper.
const (
	// DefaultRepairInterval is how often the keeper looks for sites to repair.
	DefaultRepairInterval = 30 * time.Second
	// RepairSpacing is the least time between two repairs of one site; it
	// doubles after each repair that did not heal the site, to RepairSpacingMax.
	RepairSpacing    = 15 * time.Minute
	RepairSpacingMax = 2 * time.Hour
	// lateProbeEvery is how often the keeper looks for nodes awaiting an order.
	lateProbeEvery = time.Second
)

// WithRepairInterval sets how often Serve's keeper looks for sites to repair;
// 0 turns repairs off (late probe orders are always sent).
func WithRepairInterval(d time.Duration) Option { return func(e *Engine) { e.repairEvery = d } }

// keeper is Serve's fleet watcher.
type keeper struct {
	e     *Engine
	drive func(id string) // runs a driver for a rollout Serve owns

	mu      sync.Mutex
	desired map[string]events.Desired // node -> what its key holds
	status  map[string]events.Status  // node -> its last status
	latest  map[string]events.Result  // node -> its last result
	ordered map[string]time.Time      // node -> ReadyAt of the report last ordered
	spacing map[string]time.Duration  // site -> the spacing before its next repair
	nextAt  map[string]time.Time      // site -> when it may be repaired again
}

func newKeeper(e *Engine, drive func(string)) *keeper {
	return &keeper{
		e: e, drive: drive,
		desired: map[string]events.Desired{}, status: map[string]events.Status{}, latest: map[string]events.Result{},
		ordered: map[string]time.Time{}, spacing: map[string]time.Duration{}, nextAt: map[string]time.Time{},
	}
}

// run watches the desired and status buckets and the results stream, and acts
// on a timer until ctx ends. A watch that ends (a NATS outage) is made again.
func (k *keeper) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, watch := range []func(context.Context) error{k.watchDesired, k.watchStatus, k.watchResults} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := watch(ctx); err != nil && ctx.Err() == nil {
					k.e.log.Warn("keeper watch ended; watching again", "err", err)
				}
				_ = wait.Sleep(ctx, wait.Jitter(k.e.retryDelay))
			}
		}()
	}
	defer wg.Wait()
	probes := time.NewTicker(lateProbeEvery)
	defer probes.Stop()
	var repairs <-chan time.Time
	if k.e.repairEvery > 0 {
		t := time.NewTicker(k.e.repairEvery)
		defer t.Stop()
		repairs = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-probes.C:
			k.lateProbes(ctx)
		case <-repairs:
			if err := k.repair(ctx); err != nil && ctx.Err() == nil {
				k.e.log.Warn("repair pass failed", "err", err)
			}
		}
	}
}

func (k *keeper) watchDesired(ctx context.Context) error {
	h, err := k.e.handles(ctx)
	if err != nil {
		return err
	}
	w, err := h.desired.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", events.BucketDesired, err)
	}
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e == nil {
			continue
		}
		k.mu.Lock()
		if d, err := events.DecodeDesired(e.Value(), nil, e.Key()); err == nil && e.Operation() == jetstream.KeyValuePut {
			k.desired[e.Key()] = d
		} else {
			delete(k.desired, e.Key())
		}
		k.mu.Unlock()
	}
	return ctx.Err()
}

func (k *keeper) watchStatus(ctx context.Context) error {
	h, err := k.e.handles(ctx)
	if err != nil {
		return err
	}
	w, err := h.status.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", events.BucketStatus, err)
	}
	defer func() { _ = w.Stop() }()
	for e := range w.Updates() {
		if e == nil {
			continue
		}
		k.mu.Lock()
		if st, err := events.DecodeStatus(e.Value(), nil, e.Key()); err == nil && e.Operation() == jetstream.KeyValuePut {
			k.status[e.Key()] = st
		} else {
			delete(k.status, e.Key()) // expired: the node stopped reporting
		}
		k.mu.Unlock()
	}
	return ctx.Err()
}

func (k *keeper) watchResults(ctx context.Context) error {
	c, err := k.e.js.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.ResultSubjects}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("follow %s: %w", events.StreamResults, err)
	}
	it, err := c.Messages()
	if err != nil {
		return fmt.Errorf("follow %s: %w", events.StreamResults, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			return err
		}
		res, err := events.DecodeResult(msg.Data(), msg.Headers(), msg.Subject())
		if err != nil {
			continue
		}
		k.mu.Lock()
		if prev, ok := k.latest[res.Node]; !ok || !res.FinishedAt.Before(prev.FinishedAt) {
			k.latest[res.Node] = res
		}
		k.mu.Unlock()
	}
}

// lateProbes orders the probes no driver orders: a node awaiting its probe
// for its key's revision, of a rollout that is not the active one.
func (k *keeper) lateProbes(ctx context.Context) {
	active, err := k.e.holder(ctx)
	if err != nil {
		return
	}
	type work struct {
		node  string
		order events.ProbeOrder
		ready time.Time
	}
	var todo []work
	k.mu.Lock()
	for node, res := range k.latest {
		if res.Outcome != events.OutcomeAwaitingProbe || (res.Rollout != "" && res.Rollout == active) {
			continue
		}
		d, ok := k.desired[node]
		if !ok || d.Revision != res.Revision || !k.ordered[node].Before(res.FinishedAt) {
			continue
		}
		site, role, _ := events.ParseNodeID(node)
		sibling := events.NodeID(site, other(role))
		action, why := k.siblingVerdict(sibling)
		if action == "" {
			continue
		}
		todo = append(todo, work{node: node, ready: res.FinishedAt, order: events.ProbeOrder{
			Rollout: res.Rollout, Revision: res.Revision, Action: action, Reason: textclip.Clip(why, 400)}})
	}
	k.mu.Unlock()
	for _, w := range todo {
		if !k.e.sendProbeOrder(ctx, w.node, w.order) {
			continue
		}
		k.mu.Lock()
		k.ordered[w.node] = w.ready
		k.mu.Unlock()
	}
}

// siblingVerdict says what the far side's state means for a node awaiting its
// probe: probe (it runs or awaits its key's revision, or has no key), cancel
// (it failed its key's revision), or "" (not known yet: wait). k.mu is held.
func (k *keeper) siblingVerdict(sibling string) (action, why string) {
	d, ok := k.desired[sibling]
	if !ok {
		return events.ProbeActionProbe, ""
	}
	if st, ok := k.status[sibling]; ok && st.AppliedRevision == d.Revision {
		return events.ProbeActionProbe, ""
	}
	res, ok := k.latest[sibling]
	if !ok || res.Revision != d.Revision {
		return "", ""
	}
	switch res.Outcome {
	case events.OutcomeAwaitingProbe, events.OutcomeConverged:
		return events.ProbeActionProbe, ""
	}
	return events.ProbeActionCancel, fmt.Sprintf(MsgProbeCancelled, sibling, res.Outcome, res.Reason)
}

func other(role string) string {
	if role == events.RolePBX {
		return events.RoleOML
	}
	return events.RolePBX
}

// repair starts one repair rollout for the sites that need one now.
func (k *keeper) repair(ctx context.Context) error {
	active, err := k.e.holder(ctx)
	if err != nil || active != "" {
		return err // a rollout is running: it is the one that acts now
	}
	now := time.Now()
	k.mu.Lock()
	sites := map[string]bool{}
	for node := range k.desired {
		site, _, _ := events.ParseNodeID(node)
		sites[site] = true
	}
	var plan Plan
	for _, site := range slices.Sorted(maps.Keys(sites)) {
		t, ok := k.needsRepair(site, now)
		if !ok {
			continue
		}
		plan.Targets = append(plan.Targets, t)
		sp := k.spacing[site]
		if sp == 0 {
			sp = RepairSpacing
		}
		k.nextAt[site] = now.Add(sp)
		k.spacing[site] = min(2*sp, RepairSpacingMax)
	}
	k.mu.Unlock()
	if len(plan.Targets) == 0 {
		return nil
	}
	n := len(plan.Targets)
	plan.Hash = fmt.Sprintf("repair-%d", now.UnixMilli())
	// A repair re-applies intents already in the desired bucket: a lab's weak
	// secret was accepted when it was rolled out, and each agent holds its own
	// policy before it writes. Key material is refused all the same.
	plan.AcceptWeakSecrets = true
	r, err := k.e.start(ctx, plan, Strategy{
		SiteDeadline: 5 * time.Minute, MaxFailed: n, MaxUnreachable: n,
		WaveMaxFailed: NoLimit, WaveMaxUnreachable: NoLimit, OnSiteFailure: OnSiteFailureKeep,
	}, OriginRepair)
	if errors.Is(err, ErrRolloutActive) {
		return nil // an operator's rollout won the lock: it goes first
	}
	if err != nil {
		return fmt.Errorf("start repair: %w", err)
	}
	k.e.log.Info("repairing sites whose nodes do not run their desired revision", "rollout", r.ID, "sites", n)
	k.drive(r.ID)
	return nil
}

// needsRepair decides whether site is repaired now and returns its target
// (every node's current desired intent). k.mu is held.
func (k *keeper) needsRepair(site string, now time.Time) (Target, bool) {
	t := Target{Site: site, Nodes: map[string]events.Trunk{}}
	broken := false
	for _, role := range roles {
		node := events.NodeID(site, role)
		d, ok := k.desired[node]
		if !ok {
			continue
		}
		st, ok := k.status[node]
		if !ok || !st.Trunk.Reachable || st.Drift {
			return Target{}, false // not reporting, not seeing its far side, or hand-edited
		}
		t.Nodes[role] = d.Trunk
		if st.AppliedRevision == d.Revision {
			continue
		}
		if st.HandledRevision < d.Revision || !st.Outcome.Final() {
			return Target{}, false // it has not tried its key's revision yet: let it
		}
		switch st.LastProbe {
		case "auth_or_far_trunk", "answered":
			return Target{}, false // the intent itself is wrong: not a repair's job
		}
		broken = true
	}
	if !broken {
		delete(k.spacing, site) // healthy again: the next trouble starts afresh
		return Target{}, false
	}
	if now.Before(k.nextAt[site]) {
		return Target{}, false
	}
	return t, len(t.Nodes) > 0
}
