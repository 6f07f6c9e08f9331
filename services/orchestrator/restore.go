package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pbxfleet/pbxfleet/events"
)

// The restore steps of a pass: which nodes a rollback, an abort or a failed
// site puts back (cover, coverFailed), putting their previous intent
// (putRestores, deciding per node with decideRestore), and ending the
// rollback once every restore has an end (finishRestore). The forward steps
// are in reconcile.go.

// cover marks the nodes a rollback or abort restores: the nodes of every site
// this rollout started (only started sites are ever put, see startSites),
// minus the converged sites when aborting. Whether a node was really put is
// decided against its key.
func (p *passState) cover() {
	r := p.r
	for i := range r.Sites {
		s := &r.Sites[i]
		if s.Outcome == SiteSkipped || s.Outcome == SitePending {
			continue
		}
		if r.Phase == PhaseAborting && s.Outcome == SiteConverged {
			continue
		}
		for j := range s.Nodes {
			n := &s.Nodes[j]
			if !n.UpToDate && n.RestoreRevision == 0 && n.RestoreNote == "" {
				n.RestoreRevision = n.Revision + 1
			}
		}
	}
}

// coverFailed marks the nodes of each failed site for a restore, as cover does
// for a rollback (OnSiteFailureRestore).
func (p *passState) coverFailed() {
	for i := range p.r.Sites {
		s := &p.r.Sites[i]
		if s.Outcome != SiteFailed {
			continue
		}
		for j := range s.Nodes {
			n := &s.Nodes[j]
			if !n.UpToDate && n.RestoreRevision == 0 && n.RestoreNote == "" {
				n.RestoreRevision = n.Revision + 1
			}
		}
	}
}

// restoreSettled reports whether every restore of the site has an end: a
// result, an expired deadline, or a note saying why there is none.
func (s SiteState) restoreSettled() bool {
	for _, n := range s.Nodes {
		if n.RestoreRevision != 0 && n.RestoreNote == "" && n.Restore == nil && !n.RestoreExpired {
			return false
		}
	}
	return true
}

// expireRestores marks the restores whose deadline passed without a result
// (once the results feed caught up) and reports whether any restore is still
// waiting, waking the next pass at the earliest deadline.
func (p *passState) expireRestores() (waiting bool) {
	dl := p.r.Strategy.SiteDeadline
	for i := range p.r.Sites {
		for j := range p.r.Sites[i].Nodes {
			n := &p.r.Sites[i].Nodes[j]
			if n.RestoreRevision == 0 || n.RestoreNote != "" || n.Restore != nil || n.RestoreExpired {
				continue
			}
			if n.RestoreAt == nil {
				waiting = true
				continue
			}
			deadline := n.RestoreAt.Add(dl)
			if p.mayExpire && !p.now.Before(deadline) {
				n.RestoreExpired = true
				continue
			}
			waiting = true
			p.wakeAt(deadline)
		}
	}
	return waiting
}

// putRestores puts the previous intent of each covered node as RestoreRevision,
// when its key still holds this rollout's revision; a node never put, without a
// previous intent, or changed since gets a note instead.
func (p *passState) putRestores(ctx context.Context) error {
	r := p.r
	type ref struct{ site, node int }
	var todo []ref
	siteSet := map[string]bool{}
	for i, s := range r.Sites {
		for j, n := range s.Nodes {
			if n.RestoreRevision != 0 && n.RestoreAt == nil && n.RestoreNote == "" {
				todo = append(todo, ref{i, j})
				siteSet[s.Site] = true
			}
		}
	}
	if len(todo) == 0 {
		return nil
	}
	names := make([]string, 0, len(siteSet))
	for s := range siteSet {
		names = append(names, s)
	}
	intents, err := p.d.intentsFor(ctx, names)
	if err != nil {
		return err
	}
	err = forEach(ctx, len(todo), p.d.e.workers, func(ctx context.Context, k int) error {
		s := &r.Sites[todo[k].site]
		n := &s.Nodes[todo[k].node] // each worker owns one node
		node := s.node(n.Role)
		ni := intents[s.Site].Nodes[n.Role]
		ks, err := p.d.e.readDesired(ctx, node)
		if err != nil && !errors.Is(err, ErrBadDesired) {
			return err
		}
		switch decideRestore(restoreKey{readable: err == nil, exists: ks.exists, rollout: ks.d.Rollout, revision: ks.d.Revision},
			*n, r.ID, ni.Prev != nil) {
		case restoreAlreadyPut:
			t := p.now
			n.RestoreAt = &t
		case restoreNoPrevious:
			n.RestoreNote = ReasonNoPrevious
		case restorePut:
			d := events.Desired{Node: node, Revision: n.RestoreRevision, Rollout: r.ID, PlanHash: ni.PrevPlanHash, Trunk: *ni.Prev, Probe: events.ProbeOnOrder}
			fwd := n.Revision
			out, _, err := p.d.e.ensurePut(ctx, d, func(ks keyState) bool {
				return ks.exists && ks.d.Rollout == r.ID && ks.d.Revision == fwd
			})
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("restore site %s: %w", s.Site, err)
				}
				// Retried on a later pass; a restore that cannot be put by the
				// deadline counts as not confirmed, like one never answered.
				p.d.e.log.Warn("put restore failed; retrying", "node", node, "err", err)
				p.wakeAt(p.now.Add(p.d.e.retryDelay))
				if since := p.d.putFailingSince(node, p.now); !p.now.Before(since.Add(r.Strategy.SiteDeadline)) {
					t := p.now
					n.RestoreAt, n.RestoreExpired = &t, true
				}
				return nil
			}
			if out == putConflict {
				n.RestoreNote = ReasonSuperseded
			} else {
				t := p.now
				n.RestoreAt = &t
			}
		case restoreNeverPut:
			n.RestoreNote = ReasonNotPut
		default:
			n.RestoreNote = ReasonSuperseded
		}
		return nil
	})
	if err != nil {
		return err
	}
	p.wakeAt(p.now.Add(r.Strategy.SiteDeadline))
	return nil
}

// finishRestore expires unanswered restores and, once every covered node is
// settled, ends the rollback or abort: sites still in flight are cancelled
// (their revision was superseded by the restore).
func (p *passState) finishRestore() {
	r := p.r
	if p.expireRestores() {
		return
	}
	var unconfirmed []string
	for i := range r.Sites {
		s := &r.Sites[i]
		if s.Outcome == SiteInFlight {
			t := p.now
			s.Outcome, s.Reason, s.FinishedAt = SiteCancelled, r.Reason, &t
		}
		for _, n := range s.Nodes {
			if n.RestoreRevision == 0 || n.RestoreNote != "" {
				continue
			}
			if n.Restore == nil {
				unconfirmed = append(unconfirmed, fmt.Sprintf(MsgRestoreUnconfirmed, s.node(n.Role), n.RestoreRevision, MsgNoResult))
			} else if n.Restore.Outcome != events.OutcomeConverged {
				unconfirmed = append(unconfirmed, fmt.Sprintf(MsgRestoreUnconfirmed, s.node(n.Role), n.RestoreRevision, n.Restore.Outcome))
			}
		}
	}
	r.count()
	c := r.Counters
	list := unconfirmed
	if len(list) > 10 {
		list = append(list[:10:10], fmt.Sprintf(MsgAndMore, len(unconfirmed)-10))
	}
	switch {
	case r.Phase == PhaseAborting:
		r.setPhase(p.now, PhaseAborted, ReasonAborted, fmt.Sprintf(MsgAborted, c.Converged, c.Restored, len(unconfirmed)))
	case len(unconfirmed) == 0:
		r.setPhase(p.now, PhaseRolledBack, ReasonRolledBack, fmt.Sprintf(MsgRolledBack, c.Restored))
	default:
		r.setPhase(p.now, PhaseFailed, ReasonRollbackIncomplete,
			fmt.Sprintf(MsgRollbackIncomplete, c.Restored, len(unconfirmed), strings.Join(list, "; ")))
	}
	p.d.e.log.Info("rollout finished", "rollout", r.ID, "phase", r.Phase, "restored", c.Restored, "unconfirmed", len(unconfirmed))
}

// restoreKey is what a node's desired key holds when its restore is decided.
type restoreKey struct {
	// readable is false when the key's value could not be decoded.
	readable bool
	exists   bool
	rollout  string
	revision uint64
}

// restoreAction is what putRestores does for one covered node.
type restoreAction int

const (
	// restorePut: the key holds this rollout's forward revision; put the
	// previous intent as the restore revision.
	restorePut restoreAction = iota
	// restoreAlreadyPut: the key holds the restore revision already (a pass
	// that put it ended before it was recorded).
	restoreAlreadyPut
	// restoreNoPrevious: the node had no intent before this rollout; there is
	// nothing to put back (ReasonNoPrevious).
	restoreNoPrevious
	// restoreNeverPut: the key still holds what it held before this rollout
	// (or nothing, as before): the forward revision was never put
	// (ReasonNotPut).
	restoreNeverPut
	// restoreSuperseded: someone else changed the key since (another rollout,
	// a hand put, an unreadable value); leave it (ReasonSuperseded).
	restoreSuperseded
)

// decideRestore decides what to do for node n of rollout with its key as key
// holds it; hasPrev says whether the node had an intent before the rollout.
func decideRestore(key restoreKey, n NodeState, rollout string, hasPrev bool) restoreAction {
	ours := key.readable && key.exists && key.rollout == rollout
	switch {
	case ours && key.revision == n.RestoreRevision:
		return restoreAlreadyPut
	case ours && key.revision == n.Revision && !hasPrev:
		return restoreNoPrevious
	case ours && key.revision == n.Revision:
		return restorePut
	case key.readable && ((!key.exists && n.PrevRevision == 0) ||
		(key.exists && key.revision == n.PrevRevision && key.rollout != rollout)):
		return restoreNeverPut
	}
	return restoreSuperseded
}
