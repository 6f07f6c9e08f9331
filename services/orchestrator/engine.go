package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/pbxfleet/pbxfleet/events"
)

// Defaults of the engine's optional knobs.
const (
	// DefaultBatchWindow is how long a driver gathers results after the first
	// one arrives before it folds them into the record in one write.
	DefaultBatchWindow = 25 * time.Millisecond
	// DefaultWorkers is how many KV reads and puts run at once.
	DefaultWorkers = 32
	// DefaultOpTimeout bounds Start, Get and the operations when the caller's
	// context has no deadline.
	DefaultOpTimeout = 2 * time.Minute
	// DefaultRetryDelay is the pause of Run after a pass failed on a NATS error.
	DefaultRetryDelay = time.Second
)

// Option configures an Engine.
type Option func(*Engine)

// WithLogger sets the engine's logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.log = l } }

// WithBatchWindow sets how long a driver gathers results before a pass.
func WithBatchWindow(d time.Duration) Option { return func(e *Engine) { e.batchWindow = d } }

// WithWorkers sets how many KV reads and puts run at once.
func WithWorkers(n int) Option { return func(e *Engine) { e.workers = max(1, n) } }

// WithRetryDelay sets the pause of Run after a pass failed on a NATS error.
func WithRetryDelay(d time.Duration) Option { return func(e *Engine) { e.retryDelay = d } }

// WithVersion sets the version the micro service reports (semver, default 0.1.0).
func WithVersion(v string) Option { return func(e *Engine) { e.version = v } }

// WithServing sets a function Serve calls once its endpoints answer, before it
// drives anything: what must not come up before the service (a page whose
// buttons call it) starts there.
func WithServing(f func()) Option { return func(e *Engine) { e.serving = f } }

// WithKeepRollouts sets how many rollouts (the newest) keep their record and
// plan; older finished ones are deleted when a rollout starts (default
// DefaultKeepRollouts, at least 1).
func WithKeepRollouts(n int) Option { return func(e *Engine) { e.keep = max(1, n) } }

// Engine drives rollouts. Its state lives in JetStream (see
// docs/design.md#the-wire), so any number of engines may exist; a rollout is driven by whichever
// runs it, and a new engine picks up where a dead one stopped.
type Engine struct {
	js          jetstream.JetStream
	nc          *nats.Conn
	log         *slog.Logger
	batchWindow time.Duration
	workers     int
	retryDelay  time.Duration
	version     string
	keep        int
	repairEvery time.Duration
	serving     func()

	mu sync.Mutex
	h  *handles
}

// New returns an engine on js; nc is the connection Serve registers its service
// on (it may be nil when Serve is not used). It does no I/O.
func New(js jetstream.JetStream, nc *nats.Conn, opts ...Option) *Engine {
	e := &Engine{
		js: js, nc: nc, log: slog.Default(),
		batchWindow: DefaultBatchWindow, workers: DefaultWorkers, retryDelay: DefaultRetryDelay,
		version: "0.1.0", keep: DefaultKeepRollouts, repairEvery: DefaultRepairInterval,
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

// withTimeout applies DefaultOpTimeout when ctx has no deadline.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultOpTimeout)
}

// Start creates a rollout of plan with strategy and takes the rollout lock; Run
// (or Serve) then drives it. For each node it reads the current desired state:
// the rollout puts revision current+1 when the intent differs (or when the node
// does not run the current revision yet, so it retries), revision 1 when there
// is none, and nothing when the node already runs the planned intent; a site
// whose nodes all run it is skipped. It keeps each node's previous intent for a
// restore. It returns an error wrapping ErrInvalidPlan or ErrInvalidStrategy
// (nothing written), ErrRolloutActive naming the active rollout, ErrBadDesired
// naming the node, or a NATS error.
func (e *Engine) Start(ctx context.Context, plan Plan, strategy Strategy) (Rollout, error) {
	return e.start(ctx, plan, strategy, "")
}

// start is Start for a rollout of the given origin ("" for an operator's).
func (e *Engine) start(ctx context.Context, plan Plan, strategy Strategy, origin string) (Rollout, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if err := errors.Join(plan.Validate(), strategy.Validate()); err != nil {
		return Rollout{}, fmt.Errorf("start rollout: %w", err)
	}
	inPlan := make(map[string]bool, len(plan.Targets))
	for _, t := range plan.Targets {
		inPlan[t.Site] = true
	}
	for _, s := range strategy.CanarySites {
		if !inPlan[s] {
			return Rollout{}, fmt.Errorf("start rollout: %w: canary site %s is not in the plan", ErrInvalidStrategy, s)
		}
	}
	strategy = strategy.withDefaults()
	h, err := e.handles(ctx)
	if err != nil {
		return Rollout{}, fmt.Errorf("start rollout: %w", err)
	}
	now := nowUTC()
	id := newID(now)
	if err := e.acquire(ctx, id); err != nil {
		return Rollout{}, fmt.Errorf("start rollout: %w", err)
	}
	started := false
	defer func() {
		if !started {
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer rcancel()
			if err := e.release(rctx, id); err != nil {
				e.log.Warn("release rollout lock", "rollout", id, "err", err)
			}
		}
	}()
	info, err := h.results.Info(ctx)
	if err != nil {
		return Rollout{}, fmt.Errorf("start rollout %s: read %s: %w", id, events.StreamResults, err)
	}

	r := Rollout{
		ID: id, Origin: origin, PlanHash: plan.hashOf(), Strategy: strategy, Phase: PhaseRunning,
		Sites: make([]SiteState, len(plan.Targets)), ResultSeq: info.State.LastSeq,
		CreatedAt: now, UpdatedAt: now,
	}
	intents := make([]siteIntent, len(plan.Targets))
	err = forEach(ctx, len(plan.Targets), e.workers, func(ctx context.Context, i int) error {
		var err error
		r.Sites[i], intents[i], err = e.planSite(ctx, plan.Targets[i], now)
		return err
	})
	if err != nil {
		return Rollout{}, fmt.Errorf("start rollout %s: %w", id, err)
	}

	var order []string
	for _, s := range r.Sites {
		if s.Outcome != SiteSkipped {
			order = append(order, s.Site)
		}
	}
	waveOf, waves, canary := cutWaves(order, strategy)
	r.Waves, r.Canary = waves, canary
	if waves > 0 {
		r.Wave = 1
	}
	for i := range r.Sites {
		r.Sites[i].Index = i
		if w, ok := waveOf[r.Sites[i].Site]; ok {
			r.Sites[i].Wave = w
		} else {
			r.Sites[i].Wave = 0
		}
	}
	r.count()
	r.note(now, ReasonStarted, fmt.Sprintf(MsgStarted, r.PlanHash, len(r.Sites), waves, r.Counters.Skipped), true)
	if waves > 0 {
		r.noteWaveStarted(now)
	}
	header, err := headerOf(r)
	if err != nil {
		return Rollout{}, fmt.Errorf("start rollout %s: %w", id, err)
	}

	// The intents and sites first, then the header: a rollout exists (for
	// Get, Current and a driver) only once all of it is stored.
	err = forEach(ctx, len(intents), e.workers, func(ctx context.Context, i int) error {
		b, err := json.Marshal(intents[i])
		if err != nil {
			return err
		}
		if _, err := h.rollouts.Put(ctx, planKey(id, intents[i].Site), b); err != nil {
			return fmt.Errorf("store plan of site %s: %w", intents[i].Site, err)
		}
		return nil
	})
	if err != nil {
		return Rollout{}, fmt.Errorf("start rollout %s: %w", id, err)
	}
	if err := e.saveSites(ctx, r, make([]siteRecord, len(r.Sites))); err != nil {
		return Rollout{}, fmt.Errorf("start rollout %s: store sites: %w", id, err)
	}
	if _, err := h.rollouts.Create(ctx, StateKey(id), header); err != nil {
		return Rollout{}, fmt.Errorf("start rollout %s: store record: %w", id, err)
	}
	started = true // the record exists: the rollout keeps the lock until it ends
	last, _ := json.Marshal(lockValue{ID: id, Since: now})
	if _, err := h.rollouts.Put(ctx, KeyLast, last); err != nil {
		e.log.Warn("record the last rollout", "rollout", id, "err", err) // only Current's fallback reads it
	}
	e.log.Info("rollout started", "rollout", id, "plan", r.PlanHash, "sites", len(r.Sites), "waves", waves, "skipped", r.Counters.Skipped)
	// Under the lock this rollout now holds, no rollback of an old one can run.
	if n, err := e.prune(ctx, id); err != nil {
		e.log.Warn("delete old rollouts", "err", err, "deleted", n)
	} else if n > 0 {
		e.log.Info("deleted old rollouts", "deleted", n, "kept", e.keep)
	}
	return r, nil
}

// planSite reads the current state of a target's nodes and decides each node's
// revision.
func (e *Engine) planSite(ctx context.Context, t Target, now time.Time) (SiteState, siteIntent, error) {
	s := SiteState{Site: t.Site, Outcome: SitePending}
	si := siteIntent{Site: t.Site, Nodes: make(map[string]nodeIntent, len(t.Nodes))}
	upToDate := 0
	for _, role := range roles {
		trunk, ok := t.Nodes[role]
		if !ok {
			continue
		}
		node := events.NodeID(t.Site, role)
		ks, err := e.readDesired(ctx, node)
		if err != nil && !errors.Is(err, ErrBadDesired) {
			return s, si, fmt.Errorf("site %s: %w", t.Site, err)
		}
		// Number above what the key holds and what the node says it handled:
		// after a lost store or a deleted key only the node still knows.
		floor, err := e.floor(ctx, node)
		if err != nil {
			return s, si, fmt.Errorf("site %s: %w", t.Site, err)
		}
		ns := NodeState{Role: role, PrevUnreadable: ks.bad}
		ni := nodeIntent{Trunk: trunk}
		if ks.exists && !ks.bad {
			prev := ks.d.Trunk
			ns.PrevRevision = ks.d.Revision
			floor = max(floor, ks.d.Revision)
			ni.Prev, ni.PrevPlanHash = &prev, ks.d.PlanHash
		}
		if floor >= events.MaxRevision {
			return s, si, fmt.Errorf("site %s: %w: node %s is at revision %d, the highest pbxfleet numbers; see \"Recovery\" in the README",
				t.Site, ErrRevisionsExhausted, node, floor)
		}
		ns.Revision = floor + 1
		if ks.exists && !ks.bad {
			prev := ks.d.Trunk
			if sameTrunk(prev, trunk) {
				ok, err := e.applied(ctx, node, ks.d.Revision)
				if err != nil {
					return s, si, fmt.Errorf("site %s: %w", t.Site, err)
				}
				if ok {
					ns.Revision, ns.UpToDate = ks.d.Revision, true
					ns.Result = &NodeResult{Outcome: events.OutcomeConverged, Reason: ReasonUpToDate, At: now}
					upToDate++
				}
			}
		}
		s.Nodes = append(s.Nodes, ns)
		si.Nodes[role] = ni
	}
	if upToDate == len(s.Nodes) {
		s.Outcome, s.Reason = SiteSkipped, ReasonUpToDate
		s.Message = fmt.Sprintf(MsgUpToDate, s.Nodes[0].Revision)
	}
	return s, si, nil
}

// noteWaveStarted records the start of the current wave.
func (r *Rollout) noteWaveStarted(now time.Time) {
	n := 0
	for _, s := range r.Sites {
		if s.Wave == r.Wave {
			n++
		}
	}
	if r.Canary && r.Wave == 1 {
		r.note(now, ReasonWaveStarted, fmt.Sprintf(MsgCanaryStarted, n), false)
		return
	}
	r.note(now, ReasonWaveStarted, fmt.Sprintf(MsgWaveStarted, r.Wave, r.Waves, n), false)
}

// Get returns a rollout's state. It returns an error wrapping
// ErrRolloutNotFound when there is no such rollout.
func (e *Engine) Get(ctx context.Context, id string) (Rollout, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	r, _, err := e.load(ctx, id)
	return r, err
}

// Current returns the active rollout (the one holding the lock) or, when none
// is active, the last one started. It returns an error wrapping
// ErrRolloutNotFound when there has never been one.
func (e *Engine) Current(ctx context.Context) (Rollout, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	id, err := e.currentID(ctx)
	if err != nil {
		return Rollout{}, err
	}
	return e.Get(ctx, id)
}

// CurrentHeader is Current without the site records: the phase, wave and
// counters a dashboard shows, read from the one header key (Current reads
// every site of the rollout too).
func (e *Engine) CurrentHeader(ctx context.Context) (Rollout, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	id, err := e.currentID(ctx)
	if err != nil {
		return Rollout{}, err
	}
	r, _, err := e.loadHeader(ctx, id)
	return r, err
}

func (e *Engine) currentID(ctx context.Context) (string, error) {
	id, err := e.holder(ctx)
	if err != nil || id != "" {
		return id, err
	}
	h, err := e.handles(ctx)
	if err != nil {
		return "", err
	}
	ent, err := h.rollouts.Get(ctx, KeyLast)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", fmt.Errorf("current rollout: %w: there has been none", ErrRolloutNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("current rollout: %w", err)
	}
	var last lockValue
	if err := json.Unmarshal(ent.Value(), &last); err != nil {
		return "", fmt.Errorf("current rollout: %w: %w", ErrCorruptState, err)
	}
	return last.ID, nil
}

// resolve returns id, or the current rollout's id when id is empty.
func (e *Engine) resolve(ctx context.Context, id string) (string, error) {
	if id != "" {
		return id, nil
	}
	return e.currentID(ctx)
}

// Pause stops a running rollout from starting new sites; the sites in flight
// finish and are counted. Pausing a paused rollout changes nothing. It returns
// an error wrapping ErrInvalidPhase for any other phase, or ErrRolloutNotFound.
func (e *Engine) Pause(ctx context.Context, id string) (Rollout, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	r, err := e.mutate(ctx, id, func(r *Rollout, now time.Time) (bool, error) {
		switch r.Phase {
		case PhasePaused:
			return false, nil
		case PhaseRunning:
			r.setPhase(now, PhasePaused, ReasonPaused, MsgPaused)
			return true, nil
		}
		return false, fmt.Errorf("%w: rollout %s is %s and cannot be paused", ErrInvalidPhase, r.ID, r.Phase)
	})
	if err != nil {
		return r, fmt.Errorf("pause rollout: %w", err)
	}
	return r, nil
}

// Resume lets a paused rollout go on; the failures counted so far are accepted,
// so a rollout the budget paused gets its budget afresh. Resuming a running
// rollout changes nothing (Run then picks up a rollout whose driver died). It
// returns an error wrapping ErrInvalidPhase for any other phase, or
// ErrRolloutNotFound.
func (e *Engine) Resume(ctx context.Context, id string) (Rollout, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	id, err := e.resolve(ctx, id)
	if err != nil {
		return Rollout{}, fmt.Errorf("resume rollout: %w", err)
	}
	r, err := e.mutate(ctx, id, func(r *Rollout, now time.Time) (bool, error) {
		switch r.Phase {
		case PhaseRunning:
			return false, nil
		case PhasePaused:
			// What is accepted is counted from the sites as they are now.
			whole, _, err := e.load(ctx, id)
			if err != nil {
				return false, err
			}
			whole.count()
			c := whole.Counters
			r.Accepted = Accepted{
				Failed: c.Failed, Unreachable: c.Unreachable,
				Wave: r.Wave, WaveFailed: c.WaveFailed, WaveUnreachable: c.WaveUnreachable,
			}
			r.setPhase(now, PhaseRunning, ReasonResumed, fmt.Sprintf(MsgResumed, c.Failed, c.Unreachable))
			return true, nil
		}
		return false, fmt.Errorf("%w: rollout %s is %s and cannot be resumed", ErrInvalidPhase, r.ID, r.Phase)
	})
	if err != nil {
		return r, fmt.Errorf("resume rollout: %w", err)
	}
	return r, nil
}

// Abort stops a running or paused rollout where it is: no new site starts,
// converged sites keep the new intent, and every node of a site that did not
// converge gets its previous intent back as a new revision; Run drives that to
// PhaseAborted. It returns an error wrapping ErrInvalidPhase when the rollout is
// rolling back or finished, or ErrRolloutNotFound.
func (e *Engine) Abort(ctx context.Context, id string) (Rollout, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	r, err := e.mutate(ctx, id, func(r *Rollout, now time.Time) (bool, error) {
		switch r.Phase {
		case PhaseAborting, PhaseAborted:
			return false, nil
		case PhaseRunning, PhasePaused:
			r.setPhase(now, PhaseAborting, ReasonAbortRequested, MsgAbortRequested)
			return true, nil
		}
		return false, fmt.Errorf("%w: rollout %s is %s and cannot be aborted", ErrInvalidPhase, r.ID, r.Phase)
	})
	if err != nil {
		return r, fmt.Errorf("abort rollout: %w", err)
	}
	return r, nil
}

// Rollback puts the previous intent of every node the rollout touched back, as
// a new revision (nodes never apply an older one); Run drives that to
// PhaseRolledBack (or PhaseFailed when a node does not confirm). A node whose
// key another change has since superseded is left alone. A finished rollout
// (succeeded or aborted) takes the rollout lock again. It returns an error
// wrapping ErrRolloutActive when another rollout holds the lock, ErrInvalidPhase
// after a failed rollback, or ErrRolloutNotFound.
func (e *Engine) Rollback(ctx context.Context, id string) (Rollout, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	r, _, err := e.load(ctx, id)
	if err != nil {
		return r, fmt.Errorf("roll back rollout: %w", err)
	}
	switch r.Phase {
	case PhaseRollingBack, PhaseRolledBack:
		return r, nil
	case PhaseFailed:
		return r, fmt.Errorf("roll back rollout: %w: rollout %s already failed a rollback; see its nodes' restore results", ErrInvalidPhase, r.ID)
	}
	if err := e.acquire(ctx, id); err != nil {
		return r, fmt.Errorf("roll back rollout %s: %w", id, err)
	}
	r, err = e.mutate(ctx, id, func(r *Rollout, now time.Time) (bool, error) {
		switch r.Phase {
		case PhaseRollingBack, PhaseRolledBack:
			return false, nil
		case PhaseFailed:
			return false, fmt.Errorf("%w: rollout %s already failed a rollback", ErrInvalidPhase, r.ID)
		}
		r.setPhase(now, PhaseRollingBack, ReasonRollbackRequested, MsgRollbackRequested)
		return true, nil
	})
	if err != nil {
		return r, fmt.Errorf("roll back rollout: %w", err)
	}
	return r, nil
}

// forEach runs fn for 0..n-1 with at most workers at once and returns the
// first error; it stops handing out work after it.
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
