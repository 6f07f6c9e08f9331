package orchestrator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/textclip"
)

// driver runs reconcile passes for one rollout. It holds only caches and the
// results read but not yet persisted; the truth is the record, the desired keys
// and the result stream, so a driver can die at any point and another take over.
type driver struct {
	e       *Engine
	id      string
	feed    *feed
	pending []observed // results read and not yet persisted in the record

	// recs are the sites as last read or written (nil: read them).
	recs []siteRecord

	mu      sync.Mutex
	intents map[string]siteIntent
	rev     uint64 // KV revision of the header last read or written
	// putFails remembers when putting a node's restore first failed, so the
	// retries end at the site deadline (a new driver starts the count again).
	putFails map[string]time.Time
}

// putFailingSince returns when putting node's restore first failed, recording
// now when this is the first failure.
func (d *driver) putFailingSince(node string, now time.Time) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.putFails == nil {
		d.putFails = map[string]time.Time{}
	}
	if t, ok := d.putFails[node]; ok {
		return t
	}
	d.putFails[node] = now
	return now
}

func (e *Engine) newDriver(id string, f *feed) *driver {
	return &driver{e: e, id: id, feed: f, intents: map[string]siteIntent{}}
}

// pass is one level-triggered reconcile pass: read the record, fold in the
// results observed, run the steps of the phase in a fixed order, and write back
// what changed with compare-and-set: each changed site's key, then the header
// (re-reading and redoing the pass on a conflict; every step is idempotent). The
// driver keeps the sites it read or wrote, so a pass reads only the header; a
// conflict on a site (another driver) makes it read them all again. It returns
// the record, when the next pass is due for a deadline or the bake (zero: only
// on news), and whether a pass is due at once.
func (d *driver) pass(ctx context.Context) (Rollout, time.Time, bool, error) {
	for range maxCASAttempts {
		r, rev, err := d.e.loadHeader(ctx, d.id)
		if err != nil {
			return r, time.Time{}, false, err
		}
		if d.recs == nil {
			if d.recs, err = d.e.loadSites(ctx, d.id); err != nil {
				return r, time.Time{}, false, err
			}
		}
		r.Sites = make([]SiteState, len(d.recs))
		for i, rec := range d.recs {
			r.Sites[i] = cloneSite(rec.s)
		}
		d.setRev(rev)
		d.pending = append(d.pending, d.feed.take()...)
		before, err := headerOf(r)
		if err != nil {
			return r, time.Time{}, false, fmt.Errorf("reconcile rollout %s: %w", d.id, err)
		}
		p := &passState{d: d, r: &r, now: nowUTC()}
		if err := p.run(ctx); err != nil {
			return r, time.Time{}, false, fmt.Errorf("reconcile rollout %s: %w", d.id, err)
		}
		r.count()
		if err := d.e.saveSites(ctx, r, d.recs); err != nil {
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				d.recs = nil // another driver wrote a site: read them all again
				continue
			}
			return r, time.Time{}, false, fmt.Errorf("reconcile rollout %s: %w", d.id, err)
		}
		after, err := headerOf(r)
		if err != nil {
			return r, time.Time{}, false, fmt.Errorf("reconcile rollout %s: %w", d.id, err)
		}
		if !bytes.Equal(before, after) {
			r.UpdatedAt = p.now
			n, err := d.e.saveHeader(ctx, r, rev)
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue // an operator or another driver wrote: look again
			}
			if err != nil {
				return r, time.Time{}, false, fmt.Errorf("reconcile rollout %s: %w", d.id, err)
			}
			d.setRev(n)
		}
		d.pending = nil
		if r.Phase.Terminal() {
			if err := d.e.release(ctx, d.id); err != nil {
				return r, time.Time{}, false, err
			}
		}
		return r, p.wake, p.again, nil
	}
	return Rollout{}, time.Time{}, false, fmt.Errorf("reconcile rollout %s: %w", d.id, ErrConflict)
}

// cloneSite returns a copy of s that shares nothing a pass changes with it.
func cloneSite(s SiteState) SiteState {
	s.Nodes = slices.Clone(s.Nodes)
	return s
}

func (d *driver) setRev(rev uint64) {
	d.mu.Lock()
	d.rev = rev
	d.mu.Unlock()
}

func (d *driver) lastRev() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rev
}

// intentsFor loads (once) the intents of the given sites.
func (d *driver) intentsFor(ctx context.Context, sites []string) (map[string]siteIntent, error) {
	d.mu.Lock()
	var missing []string
	for _, s := range sites {
		if _, ok := d.intents[s]; !ok {
			missing = append(missing, s)
		}
	}
	d.mu.Unlock()
	loaded := make([]siteIntent, len(missing))
	err := forEach(ctx, len(missing), d.e.workers, func(ctx context.Context, i int) error {
		var err error
		loaded[i], err = d.e.loadIntent(ctx, d.id, missing[i])
		return err
	})
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, si := range loaded {
		d.intents[si.Site] = si
	}
	out := make(map[string]siteIntent, len(sites))
	for _, s := range sites {
		out[s] = d.intents[s]
	}
	return out, nil
}

// passState is one pass over one read of the record.
type passState struct {
	d   *driver
	r   *Rollout
	now time.Time
	// mayExpire is set once the results feed caught up with the stream, so a
	// deadline can be declared passed without missing a stored result.
	mayExpire bool
	again     bool

	// wakeMu guards wake: the put and restore steps' workers (forEach) call
	// wakeAt together.
	wakeMu sync.Mutex
	wake   time.Time
}

func (p *passState) wakeAt(t time.Time) {
	p.wakeMu.Lock()
	defer p.wakeMu.Unlock()
	if p.wake.IsZero() || t.Before(p.wake) {
		p.wake = t
	}
}

// run runs the steps of the rollout's phase, in order.
func (p *passState) run(ctx context.Context) error {
	p.fold()
	switch p.r.Phase {
	case PhaseRunning, PhasePaused:
		// Sites the record shows in flight are put even when paused: they
		// started, and a pause lets them finish.
		if err := p.putInFlight(ctx); err != nil {
			return err
		}
		if err := p.expire(ctx); err != nil {
			return err
		}
		p.evaluate()
		if p.r.Strategy.OnSiteFailure != OnSiteFailureKeep {
			// A failed site gets its previous intent back, paused or not: what
			// its keys say must be what it runs.
			p.coverFailed()
			if err := p.putRestores(ctx); err != nil {
				return err
			}
		}
		if err := p.orderProbes(ctx); err != nil {
			return err
		}
		p.expireRestores()
		if p.r.Phase != PhaseRunning {
			return nil // paused: nothing new starts
		}
		if p.budget() {
			p.again = true // the new phase's steps run in the next pass
			return nil
		}
		p.advance()
		if p.r.Phase == PhaseRunning {
			p.startSites()
		}
	case PhaseRollingBack, PhaseAborting:
		if err := p.expire(ctx); err != nil {
			return err
		}
		p.evaluate()
		p.cover()
		if err := p.putRestores(ctx); err != nil {
			return err
		}
		if err := p.orderProbes(ctx); err != nil {
			return err
		}
		p.finishRestore()
	}
	return nil
}

// fold records the observed results of this rollout on their nodes: a result
// for the node's revision, or for the revision after it (the restore, which may
// have been put by a driver that died before recording it). The first result of
// a revision counts. Results of other rollouts and revisions are ignored.
func (p *passState) fold() {
	if len(p.d.pending) == 0 {
		return
	}
	type loc struct{ site, node int }
	idx := make(map[string]loc, 2*len(p.r.Sites))
	for i, s := range p.r.Sites {
		for j, n := range s.Nodes {
			idx[s.node(n.Role)] = loc{i, j}
		}
	}
	for _, o := range p.d.pending {
		p.r.ResultSeq = max(p.r.ResultSeq, o.seq)
		if o.res.Rollout != p.r.ID {
			continue
		}
		l, ok := idx[o.res.Node]
		if !ok {
			continue
		}
		n := &p.r.Sites[l.site].Nodes[l.node]
		if !o.res.Outcome.Final() {
			foldAwaiting(n, o.res)
			continue
		}
		switch {
		case n.UpToDate:
		case o.res.Revision == n.Revision && n.Result == nil && p.renumber(l.site, n, o.res):
		case o.res.Revision == n.Revision && n.Result == nil:
			n.Result = summarize(o.res, o.seq)
		case o.res.Revision == n.Revision+1 && n.Restore == nil:
			n.Restore = summarize(o.res, o.seq)
		}
	}
}

// renumber handles a node that refused the rollout's revision as stale: it had
// handled a higher one, which the key no longer showed (the store was lost, or
// the key deleted). Once per node and only while its site is in flight, the
// rollout numbers the node again above what it handled; putInFlight puts it.
// It reports whether it did.
func (p *passState) renumber(site int, n *NodeState, res events.Result) bool {
	if res.Outcome != events.OutcomeRejected || res.HandledRevision < n.Revision || n.ReplacedRevision != 0 ||
		p.r.Sites[site].Outcome != SiteInFlight || res.HandledRevision >= events.MaxRevision {
		return false
	}
	p.d.e.log.Warn("a node refused its revision as stale; numbering it again above what it handled",
		"node", p.r.Sites[site].node(n.Role), "revision", n.Revision, "handled", res.HandledRevision)
	n.ReplacedRevision, n.Revision = n.Revision, res.HandledRevision+1
	n.Put, n.Probe = false, nil
	p.again = true
	return true
}

// expire lets this pass declare deadlines passed: when one is due, it first
// waits until the feed has read every result stored, and folds those in.
func (p *passState) expire(ctx context.Context) error {
	dl := p.r.Strategy.SiteDeadline
	due := false
	for _, s := range p.r.Sites {
		if s.Outcome == SiteInFlight && s.StartedAt != nil && !p.now.Before(s.StartedAt.Add(dl)) {
			due = true
		}
		for _, n := range s.Nodes {
			if n.RestoreAt != nil && n.Restore == nil && !n.RestoreExpired && !p.now.Before(n.RestoreAt.Add(dl)) {
				due = true
			}
		}
	}
	if !due {
		return nil
	}
	h, err := p.d.e.handles(ctx)
	if err != nil {
		return err
	}
	if err := p.d.feed.catchUp(ctx, h.results); err != nil {
		if ctx.Err() != nil {
			return err
		}
		p.d.e.log.Warn("results not caught up; deadlines wait for the next pass", "rollout", p.r.ID, "err", err)
		p.wakeAt(p.now.Add(time.Second))
		return nil
	}
	p.d.pending = append(p.d.pending, p.d.feed.take()...)
	p.fold()
	p.mayExpire = true
	return nil
}

// evaluate decides the outcome of each site in flight: converged when every
// node converged, failed when every node reported and one did not converge (or
// the deadline passed and one did not), unreachable when the deadline passed
// without every result.
func (p *passState) evaluate() {
	dl := p.r.Strategy.SiteDeadline
	for i := range p.r.Sites {
		s := &p.r.Sites[i]
		if s.Outcome != SiteInFlight {
			continue
		}
		var failed, missing []string
		for _, n := range s.Nodes {
			switch {
			case n.Result == nil:
				missing = append(missing, s.node(n.Role))
			case n.Result.Outcome != events.OutcomeConverged:
				failed = append(failed, fmt.Sprintf(MsgNodeFailed, s.node(n.Role), n.Result.Outcome, n.Result.Reason))
			}
		}
		deadline := p.now
		if s.StartedAt != nil {
			deadline = s.StartedAt.Add(dl)
		}
		expired := p.mayExpire && !p.now.Before(deadline)
		switch {
		case len(missing) == 0 && len(failed) == 0:
			s.Outcome = SiteConverged
		case len(failed) > 0 && (len(missing) == 0 || expired):
			s.Outcome, s.Reason, s.Message = SiteFailed, ReasonNodeFailed, textclip.Clip(strings.Join(failed, "; "), maxSiteMessageLen)
		case expired:
			s.Outcome, s.Reason = SiteUnreachable, ReasonDeadline
			s.Message = textclip.Clip(fmt.Sprintf(MsgDeadline, dl, strings.Join(missing, ", ")), maxSiteMessageLen)
		default:
			p.wakeAt(deadline)
			continue
		}
		t := p.now
		s.FinishedAt = &t
	}
}

// budget checks the failure budget and, when it is spent, moves the rollout to
// rolling back or paused (Strategy.OnFailure). It reports whether it did.
func (p *passState) budget() bool {
	r, s := p.r, p.r.Strategy
	r.count()
	a := r.Accepted
	failed, unreachable := r.Counters.Failed-a.Failed, r.Counters.Unreachable-a.Unreachable
	wf, wu := r.waveCounts(r.Wave)
	if a.Wave == r.Wave {
		wf, wu = wf-a.WaveFailed, wu-a.WaveUnreachable
	}
	var reason, why string
	switch {
	case r.Canary && r.Wave == 1 && wf+wu > 0:
		var bad []string
		for _, st := range r.Sites {
			if st.Wave == 1 && (st.Outcome == SiteFailed || st.Outcome == SiteUnreachable) {
				bad = append(bad, st.Site+" "+string(st.Outcome))
			}
		}
		reason, why = ReasonCanaryFailed, fmt.Sprintf(MsgCanaryFailed, strings.Join(bad, ", "))
	case failed > s.MaxFailed:
		reason, why = ReasonBudgetExceeded, fmt.Sprintf(MsgBudgetFailed, failed, s.MaxFailed)
	case unreachable > s.MaxUnreachable:
		reason, why = ReasonBudgetExceeded, fmt.Sprintf(MsgBudgetUnreachable, unreachable, s.MaxUnreachable)
	case s.WaveMaxFailed != NoLimit && wf > s.WaveMaxFailed:
		reason, why = ReasonBudgetExceeded, fmt.Sprintf(MsgWaveBudgetFailed, r.Wave, wf, s.WaveMaxFailed)
	case s.WaveMaxUnreachable != NoLimit && wu > s.WaveMaxUnreachable:
		reason, why = ReasonBudgetExceeded, fmt.Sprintf(MsgWaveBudgetUnreachable, r.Wave, wu, s.WaveMaxUnreachable)
	default:
		return false
	}
	if s.OnFailure == OnFailurePause {
		r.setPhase(p.now, PhasePaused, reason, fmt.Sprintf(MsgOnFailurePause, why))
	} else {
		r.setPhase(p.now, PhaseRollingBack, reason, fmt.Sprintf(MsgOnFailureRollback, why))
	}
	p.d.e.log.Warn("rollout failure budget spent", "rollout", r.ID, "reason", reason, "detail", why, "on_failure", s.OnFailure)
	return true
}

// advance moves past finished waves: bake, next wave, or success.
func (p *passState) advance() {
	r := p.r
	for r.Phase == PhaseRunning {
		if r.Wave == 0 || r.Wave > r.Waves {
			p.succeed()
			return
		}
		for _, s := range r.Sites {
			if s.Wave == r.Wave && (!s.Outcome.done() || !s.restoreSettled()) {
				return
			}
		}
		if r.BakeUntil == nil {
			wf, wu := r.waveCounts(r.Wave)
			wc := 0
			for _, s := range r.Sites {
				if s.Wave == r.Wave && s.Outcome == SiteConverged {
					wc++
				}
			}
			r.note(p.now, ReasonWaveCompleted, fmt.Sprintf(MsgWaveCompleted, r.Wave, wc, wf, wu), false)
		}
		if r.Wave == r.Waves {
			p.succeed()
			return
		}
		if bake := r.Strategy.Bake; bake > 0 {
			if r.BakeUntil == nil {
				t := p.now.Add(bake)
				r.BakeUntil = &t
				r.note(p.now, ReasonBaking, fmt.Sprintf(MsgBaking, bake, r.Wave+1), false)
			}
			if p.now.Before(*r.BakeUntil) {
				p.wakeAt(*r.BakeUntil)
				return
			}
		}
		r.BakeUntil = nil
		r.Wave++
		r.noteWaveStarted(p.now)
	}
}

func (p *passState) succeed() {
	p.r.count()
	c := p.r.Counters
	p.r.BakeUntil = nil
	p.r.setPhase(p.now, PhaseSucceeded, ReasonSucceeded, fmt.Sprintf(MsgSucceeded, c.Converged, c.Failed, c.Unreachable, c.Skipped))
	p.d.e.log.Info("rollout succeeded", "rollout", p.r.ID, "converged", c.Converged, "failed", c.Failed, "unreachable", c.Unreachable)
}

// startSites marks the next pending sites of the current wave in flight, as
// many as the parallelism allows. It does no I/O: the marks are persisted
// first and putInFlight puts them in the next pass (write-ahead), so a put is
// never lost to a record write that an operator's pause or abort won.
func (p *passState) startSites() {
	r := p.r
	inFlight := 0
	var todo []int
	for i, s := range r.Sites {
		if s.Wave != r.Wave {
			continue
		}
		switch s.Outcome {
		case SiteInFlight:
			inFlight++
		case SitePending:
			todo = append(todo, i)
		}
	}
	if par := r.Strategy.Parallelism; par > 0 {
		todo = todo[:max(0, min(len(todo), par-inFlight))]
	}
	for _, i := range todo {
		t := p.now
		r.Sites[i].StartedAt, r.Sites[i].Outcome = &t, SiteInFlight
	}
	if len(todo) > 0 {
		p.again = true
	}
}

// putInFlight puts the desired states of the sites in flight whose nodes are
// not put yet. A node whose key already holds this rollout's revision (its
// driver died after the put, before recording it) is not put again; a node
// whose key holds a revision the rollout did not expect fails its site.
func (p *passState) putInFlight(ctx context.Context) error {
	r := p.r
	var todo []int
	for i, s := range r.Sites {
		if s.Outcome != SiteInFlight {
			continue
		}
		for _, n := range s.Nodes {
			if !n.UpToDate && !n.Put {
				todo = append(todo, i)
				break
			}
		}
	}
	if len(todo) == 0 {
		return nil
	}
	names := make([]string, len(todo))
	for k, i := range todo {
		names[k] = r.Sites[i].Site
	}
	intents, err := p.d.intentsFor(ctx, names)
	if err != nil {
		return err
	}
	return forEach(ctx, len(todo), p.d.e.workers, func(ctx context.Context, k int) error {
		s := &r.Sites[todo[k]] // each worker owns one site
		var conflicts []string
		for j := range s.Nodes {
			n := &s.Nodes[j]
			if n.UpToDate || n.Put {
				continue
			}
			d := events.Desired{
				Node: s.node(n.Role), Revision: n.Revision, Rollout: r.ID, PlanHash: r.PlanHash,
				Trunk: intents[s.Site].Nodes[n.Role].Trunk, Probe: events.ProbeOnOrder,
			}
			prev, unreadable, replaced := n.PrevRevision, n.PrevUnreadable, n.ReplacedRevision
			out, ks, err := p.d.e.ensurePut(ctx, d, func(ks keyState) bool {
				switch {
				case !ks.exists:
					return prev == 0
				case ks.bad:
					return unreadable
				case replaced != 0 && ks.d.Rollout == r.ID && ks.d.Revision == replaced:
					return true // this rollout's own put, numbered again
				}
				return ks.d.Revision == prev
			})
			if err != nil {
				if p.putFailed(ctx, s, d.Node, err) {
					return nil
				}
				return fmt.Errorf("site %s: %w", s.Site, err)
			}
			if out == putConflict {
				conflicts = append(conflicts, fmt.Sprintf(MsgKeyChanged, d.Node, ks.d.Revision, ks.d.Rollout))
				continue
			}
			n.Put = true
		}
		if len(conflicts) > 0 {
			t := p.now
			s.Outcome, s.Reason, s.Message, s.FinishedAt = SiteFailed, ReasonKeyChanged, textclip.Clip(strings.Join(conflicts, "; "), maxSiteMessageLen), &t
		}
		return nil
	})
}

// putFailed decides what a failed put of node's desired state does to its site,
// so that no retry outlives the site deadline: a put that can never succeed
// (the event is too large or invalid) fails the site at once; any other error
// is retried on a later pass until the site's deadline, when it fails the site.
// It reports whether it handled the error (false: ctx ended).
func (p *passState) putFailed(ctx context.Context, s *SiteState, node string, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	permanent := errors.Is(err, events.ErrTooLarge) || errors.Is(err, events.ErrInvalidField) ||
		errors.Is(err, events.ErrInvalidRevision) || errors.Is(err, events.ErrMalformed)
	deadline := p.now
	if s.StartedAt != nil {
		deadline = s.StartedAt.Add(p.r.Strategy.SiteDeadline)
	}
	if !permanent && p.now.Before(deadline) {
		p.d.e.log.Warn("put desired state failed; retrying", "node", node, "err", err)
		p.wakeAt(p.now.Add(p.d.e.retryDelay))
		return true
	}
	t := p.now
	s.Outcome, s.Reason, s.FinishedAt = SiteFailed, ReasonPutFailed, &t
	s.Message = textclip.Clip(fmt.Sprintf(MsgPutFailed, node, err), maxSiteMessageLen)
	p.d.e.log.Warn("site failed: its desired state could not be put", "site", s.Site, "node", node, "err", err)
	return true
}
