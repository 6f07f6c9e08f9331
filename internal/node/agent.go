package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/intent"
	"github.com/pbxfleet/pbxfleet/internal/seal"
	"github.com/pbxfleet/pbxfleet/internal/secretpolicy"
	"github.com/pbxfleet/pbxfleet/internal/wait"
)

// SecretOpener opens a trunk secret sealed to this node's key.
type SecretOpener interface {
	Open(sealed, sealedBy string) (string, error)
}

// Hooks let tests stop an apply at a phase boundary, as a crash would.
type Hooks struct {
	// AfterWrite runs after the managed files are written and before the reload.
	// A non-nil error aborts the apply on the spot, leaving the journal in flight
	// exactly as a killed process would.
	AfterWrite func() error
}

// Option configures an Agent.
type Option func(*Agent)

// WithLogger sets the agent's logger.
func WithLogger(l *slog.Logger) Option { return func(a *Agent) { a.log = l } }

// WithVersion sets the version reported in status and by the NATS service.
func WithVersion(v string) Option { return func(a *Agent) { a.version = v } }

// WithSecretOpener lets the agent open sealed secrets.
func WithSecretOpener(o SecretOpener) Option { return func(a *Agent) { a.secrets = o } }

// WithHooks installs test hooks.
func WithHooks(h Hooks) Option { return func(a *Agent) { a.hooks = h } }

// Agent is one node's runtime: pbx-node or agents-node around a Side.
type Agent struct {
	cfg     Config
	side    Side
	cli     CLI
	ver     verifier
	nc      *nats.Conn
	log     *slog.Logger
	state   stateDir
	site    string
	role    string
	node    string
	version string
	secrets SecretOpener
	hooks   Hooks
	objects Objects // nil: files only
	// metricsReg is where WithMetrics registers metrics; metrics is nil without it.
	metricsReg prometheus.Registerer
	metrics    *agentMetrics

	// applyMu serializes applies and checks: one Asterisk, one change at a time.
	applyMu sync.Mutex
	// mu guards journal, lastOutcome, lastProbe and lastValue.
	mu          sync.Mutex
	journal     Journal
	lastOutcome events.Outcome
	lastProbe   string // the verdict of the last apply's probe call
	// lastValue is the digest of the last desired value handled: a resync of
	// the same value is nothing new.
	lastValue string
	loaded    bool
	// resume is an apply a restart interrupted while it awaited its probe
	// order: its files stay (Asterisk runs them, the far side may probe them)
	// and the next apply of the same revision takes its previous bytes over.
	resume *InFlight
	// statusFails counts failed status puts in a row (Run's goroutine only).
	statusFails failureLog
	// puts holds the newest put of the node's desired key not handled yet
	// (empty: a delete, read the key).
	puts chan []byte
	// gate hands probe orders to the apply awaiting one.
	gate probeGate
}

// New returns an agent for cfg. nc may be nil for local-only use (Check).
// It returns an error when cfg is invalid or its role is not side's.
func New(cfg Config, side Side, cli CLI, nc *nats.Conn, opts ...Option) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new agent: %w", err)
	}
	cfg = cfg.WithDefaults()
	site, role, _ := events.ParseNodeID(cfg.Node)
	if role != side.Role {
		return nil, fmt.Errorf("new agent %s: node role %q but this is the %s agent (%s)", cfg.Node, role, side.Program, side.Role)
	}
	if cli == nil {
		cli = ExecCLI{Argv: cfg.Command}
	}
	a := &Agent{
		cfg: cfg, side: side, cli: cli, nc: nc,
		ver:   verifier{side: side, cli: cli, cfg: cfg},
		log:   slog.Default(),
		state: stateDir(cfg.StateDir),
		site:  site, role: role, node: cfg.Node,
		version:     "dev",
		statusFails: failureLog{op: "put the status"},
		puts:        make(chan []byte, 1),
	}
	for _, o := range opts {
		o(a)
	}
	a.log = a.log.With("node", a.node)
	if err := a.initMetrics(); err != nil {
		return nil, fmt.Errorf("new agent: %w", err)
	}
	return a, nil
}

// Node returns the agent's node id.
func (a *Agent) Node() string { return a.node }

// init loads the journal once and undoes an apply that a crash interrupted.
func (a *Agent) init(ctx context.Context) error {
	a.mu.Lock()
	loaded := a.loaded
	a.mu.Unlock()
	if loaded {
		return nil
	}
	if err := a.state.ensure(); err != nil {
		return err
	}
	j, err := a.state.loadJournal()
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.journal, a.loaded = j, true
	a.mu.Unlock()
	if j.InFlight != nil {
		return a.recover(ctx, *j.InFlight)
	}
	return nil
}

// recover undoes an interrupted apply: each managed file was written atomically,
// so it holds either the old or the new bytes; putting the old bytes back and
// reloading returns the host to the last applied revision. The interrupted
// revision was not marked as seen, so it is applied again from the desired key.
func (a *Agent) recover(ctx context.Context, inf InFlight) error {
	if inf.Phase == phaseAwaitingProbe {
		// Written, reloaded and checked: Asterisk runs these files, and the
		// far side may be probing them right now (its order came before the
		// stop). Putting the old ones back would fail that probe; the
		// revision is applied again from the key (the same bytes), keeping
		// the previous bytes of this journal for a rollback.
		a.log.Warn("an apply was interrupted while it awaited its probe order; its files stay and it is applied again",
			"revision", inf.Revision)
		a.mu.Lock()
		a.resume = &inf
		a.mu.Unlock()
		return nil
	}
	return a.undo(ctx, inf)
}

// undo puts back the previous files of an interrupted apply and reloads.
func (a *Agent) undo(ctx context.Context, inf InFlight) error {
	a.log.Warn("an apply was interrupted; restoring the previous files", "revision", inf.Revision, "phase", inf.Phase)
	if err := a.restore(ctx, inf); err != nil {
		return fmt.Errorf("recover %s from interrupted revision %d: %w", a.node, inf.Revision, err)
	}
	if rc := a.ver.reload(ctx); !rc.Passed {
		a.log.Warn("reload after recovery failed", "detail", rc.Detail)
	}
	a.mu.Lock()
	a.journal.InFlight = nil
	j := a.journal
	a.mu.Unlock()
	return a.state.saveJournal(j)
}

// Run follows the node's desired key and applies each new revision until ctx
// ends; it also answers the check and status services and refreshes status on a
// timer. It returns nil when ctx ends, or an error when it cannot start.
func (a *Agent) Run(ctx context.Context) error {
	if a.nc == nil {
		return fmt.Errorf("run %s: no NATS connection", a.node)
	}
	if err := a.init(ctx); err != nil {
		return err
	}
	svc, err := a.startService()
	if err != nil {
		return fmt.Errorf("run %s: %w", a.node, err)
	}
	defer func() { _ = svc.Stop() }()
	sub, err := a.notifyDesired()
	if err != nil {
		return fmt.Errorf("run %s: %w", a.node, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	h, err := a.openBus(ctx)
	if err != nil {
		return nil //nolint:nilerr // only ctx ends openBus
	}

	readFails := &failureLog{op: "read the desired key"}
	a.flushOutbox(ctx, h)
	a.refreshStatus(ctx, h)
	a.resync(ctx, h, readFails)
	timer := time.NewTimer(wait.Jitter(a.cfg.StatusInterval))
	defer timer.Stop()
	a.log.Info("agent running", "side", a.side.Program, "config_dir", a.cfg.ConfigDir)
	for {
		select {
		case <-ctx.Done():
			return nil
		case data := <-a.puts:
			if len(data) == 0 {
				a.resync(ctx, h, readFails) // deleted: see what the key holds
				continue
			}
			_, _ = a.handle(ctx, h, data)
		case <-timer.C:
			// Level-triggered: whatever a notification missed across a NATS
			// restart, the key's current value is the truth.
			a.resync(ctx, h, readFails)
			a.flushOutbox(ctx, h)
			a.refreshStatus(ctx, h)
			timer.Reset(wait.Jitter(a.cfg.StatusInterval))
		}
	}
}

// handle decides what to do with one entry of the desired key and publishes the
// result; ok is false when the entry needed no answer (already handled).
func (a *Agent) handle(ctx context.Context, h *busHandles, value []byte) (events.Result, bool) {
	digest := sha256Hex(value)
	a.mu.Lock()
	if digest == a.lastValue {
		a.mu.Unlock()
		return events.Result{}, false
	}
	a.lastValue = digest
	lastSeen, lastRollout := a.journal.LastSeen, a.journal.LastSeenRollout
	a.mu.Unlock()

	var res events.Result
	d, err := events.DecodeDesired(value, nil, a.node)
	switch {
	case err != nil:
		res = a.rejected(0, "", fmt.Sprintf("desired state at key %s rejected: %v", a.node, err))
	case d.Revision == lastSeen && (d.Rollout == lastRollout || lastRollout == ""):
		// Handled before (a restart, or a resync of the same entry). A journal
		// that names no rollout (written before it did, or a hand put) trusts
		// the revision alone.
		return events.Result{}, false
	case d.Revision <= lastSeen:
		// The same revision from another rollout is another desired state: its
		// numbering started again (a lost store, a deleted key).
		res = a.rejected(d.Revision, d.Rollout,
			fmt.Sprintf("stale revision %d ignored: this node has already handled revision %d", d.Revision, lastSeen))
		res.HandledRevision = lastSeen
	default:
		var final bool
		if res, final = a.apply(ctx, d, h); !final {
			return res, false
		}
	}
	// Status before the result: whoever acts on the result (a rollout that then
	// returns, an operator running status) must find the status it implies.
	// An apply that ended says so even when the agent is being stopped: each
	// is bounded by its own timeout (a result that cannot be published waits
	// in the outbox for the next start).
	done := context.WithoutCancel(ctx)
	a.refreshStatus(done, h)
	a.publishResult(done, h, res)
	return res, true
}

func (a *Agent) rejected(rev uint64, rollout, reason string) events.Result {
	a.log.Warn("desired state rejected", "revision", rev, "reason", reason)
	now := time.Now().UTC()
	return events.Result{
		Node: a.node, Revision: rev, Rollout: rollout, Outcome: events.OutcomeRejected, Reason: reason,
		StartedAt: now, FinishedAt: now, Trunk: events.TrunkState{State: "unchanged"},
	}
}

// Apply renders, writes, reloads and verifies one desired state, rolling back on
// failure. It never returns a half-applied host: the result says converged,
// rolled_back (previous files restored), failed (restoring failed too) or
// rejected (nothing written). Without the bus it cannot take a probe order, so
// it probes at once whatever d.Probe says.
func (a *Agent) Apply(ctx context.Context, d events.Desired) events.Result {
	res, _ := a.apply(ctx, d, nil)
	return res
}

// apply is Apply with the bus: a ProbeOnOrder desired state reports
// OutcomeAwaitingProbe on h and waits for its probe order. final is false when
// the agent was stopped while waiting for the order: nothing is final then, the
// journal still shows the apply in flight, and the next start keeps its files
// and applies the revision again (its far side may be probing it right then);
// a rollback still restores the bytes from before the first start.
//
// Once started, an apply runs to its end whatever ctx does (a SIGTERM must not
// leave Asterisk running a revision whose files were rolled back, or a rollback
// without its reload): each phase is bounded by its own deadline. Only the wait
// for a probe order ends with ctx.
func (a *Agent) apply(ctx context.Context, d events.Desired, h *busHandles) (res events.Result, final bool) {
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	work := context.WithoutCancel(ctx)
	if err := a.init(work); err != nil {
		return a.rejected(d.Revision, d.Rollout, "agent state: "+err.Error()), true
	}
	start := time.Now().UTC()
	res = events.Result{Node: a.node, Revision: d.Revision, Rollout: d.Rollout, StartedAt: start, Timings: map[string]int64{}}
	log := a.log.With("revision", d.Revision)

	secret, err := a.openSecret(d.Trunk)
	if err != nil {
		return a.finishRejected(d, "secret: "+err.Error()), true
	}
	// The policy plan and the orchestrator hold, on the secret as opened (a
	// sealed one is only readable here), before anything is written.
	if err := secretpolicy.Check(secret, secretpolicy.Options{AcceptWeak: a.cfg.AcceptWeakSecrets}); err != nil {
		return a.finishRejected(d, "secret: "+err.Error()), true
	}
	t := intent.ToTrunk(d.Trunk)
	t.Revision, t.Secret = d.Revision, secret
	phase := time.Now()
	rendered, err := a.side.render(t, a.cfg.Files)
	if err != nil {
		return a.finishRejected(d, "render: "+err.Error()), true
	}
	res.Timings[events.PhaseRender] = msSince(phase)
	if a.objects != nil && a.objects.OwnsTrunk() {
		rendered = a.side.trunkElsewhere(rendered, a.cfg.Files, d.Revision)
	}
	if _, ok := a.routeProbe(d.Trunk); ok {
		rendered = a.side.withRouteProbe(rendered, a.cfg.Files)
	}

	// Keep the previous bytes (and objects), then write.
	phase = time.Now()
	inf := InFlight{Revision: d.Revision, Rollout: d.Rollout, Phase: phaseWriting, Prev: map[string]bool{}, Started: start}
	a.mu.Lock()
	resume := a.resume
	a.resume = nil
	a.mu.Unlock()
	if resume != nil && (resume.Revision != d.Revision || resume.Rollout != d.Rollout) {
		// Another desired state came meanwhile: undo the interrupted one first.
		if err := a.undo(work, *resume); err != nil {
			return a.finishFailed(res, err.Error()), true
		}
		resume = nil
	}
	if resume != nil {
		// The files on disk are this revision's already: the previous bytes
		// kept when it was first applied are the ones a rollback needs.
		inf.Prev, inf.Objects = resume.Prev, resume.Objects
	} else {
		if a.objects != nil {
			snap, err := a.objects.Snapshot(work, d.Trunk)
			if err != nil {
				return a.finishFailed(res, "read the current objects: "+err.Error()), true
			}
			inf.Objects = snap
		}
		for _, f := range rendered.Files {
			old, existed, err := readOptional(a.path(f.Name))
			if err != nil {
				return a.finishFailed(res, "read current "+f.Name+": "+err.Error()), true
			}
			inf.Prev[f.Name] = existed
			if existed {
				if err := writeAtomic(a.state.prevPath(f.Name), old, 0o600); err != nil {
					return a.finishFailed(res, "keep previous "+f.Name+": "+err.Error()), true
				}
			}
		}
	}
	if err := a.saveInFlight(&inf); err != nil {
		return a.finishFailed(res, err.Error()), true
	}
	for _, f := range rendered.Files {
		if err := writeAtomic(a.path(f.Name), f.Content, 0o644); err != nil {
			return a.rollback(work, res, inf, "write "+f.Name+": "+err.Error()), true
		}
		res.Files = append(res.Files, events.FileHash{Name: f.Name, SHA256: sha256Hex(f.Content)})
	}
	// The targets exist now; only then add the includes (docs/asterisk.md#where-the-files-go).
	for _, inc := range rendered.Includes {
		if _, err := ensureInclude(a.path(inc.Parent), inc.Line); err != nil {
			return a.rollback(work, res, inf, err.Error()), true
		}
	}
	var objectChecks []events.Check
	if a.objects != nil {
		if objectChecks, err = a.objects.Apply(work, d.Trunk, secret); err != nil {
			return a.rollback(work, res, inf, "objects: "+err.Error()), true
		}
	}
	inf.Phase = phaseWritten
	if err := a.saveInFlight(&inf); err != nil {
		return a.rollback(work, res, inf, err.Error()), true
	}
	res.Timings[events.PhaseWrite] = msSince(phase)
	if a.hooks.AfterWrite != nil {
		if err := a.hooks.AfterWrite(); err != nil {
			res.Outcome, res.Reason = events.OutcomeFailed, "interrupted: "+err.Error()
			res.FinishedAt = time.Now().UTC()
			res.Trunk = events.TrunkState{State: "unknown"}
			return res, true
		}
	}
	log.Info("files written", "files", len(rendered.Files))

	phase = time.Now()
	rc := a.ver.reload(work)
	res.Checks = append(res.Checks, rc)
	res.Timings[events.PhaseReload] = msSince(phase)
	if !rc.Passed {
		return a.rollback(work, res, inf, "reload: "+rc.Detail), true
	}
	phase = time.Now()
	v := a.ver.checks(work, d.Trunk, d.Revision)
	if a.objects != nil && v.Passed() {
		// The objects are checked before the probe, which relies on them.
		v.Checks = append(v.Checks, objectChecks...)
	}
	res.Checks = append(res.Checks, v.Checks...)
	res.Trunk = v.Trunk
	if !v.Passed() {
		res.Timings[events.PhaseVerify] = msSince(phase)
		fail, _ := v.FirstFailure()
		return a.rollback(work, res, inf, fail.Name+": "+fail.Detail), true
	}

	if d.Probe == events.ProbeOnOrder && h != nil {
		err := a.awaitProbeOrder(ctx, h, d, &inf, res)
		switch {
		case ctx.Err() != nil:
			log.Warn("stopped while awaiting the probe order; the next start keeps the files and applies the revision again")
			return res, false
		case err != nil:
			res.Timings[events.PhaseVerify] = msSince(phase)
			return a.rollback(work, res, inf, "probe: "+err.Error()), true
		}
	}
	pc, pr := a.ver.probe(work, d.Trunk)
	res.Checks, res.Probe = append(res.Checks, pc), pr
	res.Timings[events.PhaseVerify] = msSince(phase)
	if !pc.Passed {
		return a.rollback(work, res, inf, pc.Name+": "+pc.Detail), true
	}
	if number, ok := a.routeProbe(d.Trunk); ok {
		// The outbound route's own path, once the trunk is proved: as an
		// agent's call would go, through OMniLeads' routes to the far side.
		rc := a.ver.checkRouteProbe(work, number, d.Trunk.ProbeNumber)
		res.Checks = append(res.Checks, rc)
		res.Timings[events.PhaseVerify] = msSince(phase)
		if !rc.Passed {
			return a.rollback(work, res, inf, rc.Name+": "+rc.Detail), true
		}
	}

	hashes := map[string]string{}
	for _, f := range res.Files {
		hashes[f.Name] = f.SHA256
	}
	a.mu.Lock()
	a.journal.Applied = AppliedState{Revision: d.Revision, Hashes: hashes, At: time.Now().UTC(), Trunk: withoutSecret(d.Trunk)}
	a.journal.LastSeen, a.journal.LastSeenRollout = d.Revision, d.Rollout
	a.journal.InFlight = nil
	a.lastOutcome, a.lastProbe = events.OutcomeConverged, probeVerdictOf(res.Probe)
	j := a.journal
	a.mu.Unlock()
	if err := a.state.saveJournal(j); err != nil {
		log.Error("save journal", "err", err)
	}
	res.Outcome = events.OutcomeConverged
	res.FinishedAt = time.Now().UTC()
	log.Info("converged", "trunk", res.Trunk.State, "rtt_ms", res.Trunk.RTTMS, "probe", probeVerdict(res.Probe))
	return res, true
}

// awaitProbeOrder reports the checks passed (OutcomeAwaitingProbe) and waits for
// the orchestrator's order for d's revision. It returns nil when the order says
// probe, or why not.
func (a *Agent) awaitProbeOrder(ctx context.Context, h *busHandles, d events.Desired, inf *InFlight, res events.Result) error {
	orders := a.gate.await(d.Rollout, d.Revision)
	defer a.gate.close()
	inf.Phase = phaseAwaitingProbe
	if err := a.saveInFlight(inf); err != nil {
		return err
	}
	interim := res
	interim.Outcome, interim.FinishedAt = events.OutcomeAwaitingProbe, time.Now().UTC()
	a.publishResult(context.WithoutCancel(ctx), h, interim)
	a.log.Info("checks passed; awaiting the probe order", "revision", d.Revision, "rollout", d.Rollout)
	return a.waitForOrder(ctx, h, orders, d)
}

// rollback restores the previous bytes, reloads, verifies the restored revision
// and records the revision as handled.
func (a *Agent) rollback(ctx context.Context, res events.Result, inf InFlight, reason string) events.Result {
	phase := time.Now()
	a.log.Warn("apply failed; rolling back", "revision", inf.Revision, "reason", reason)
	a.metrics.rolledBack()
	res.Reason = reason
	res.Outcome = events.OutcomeRolledBack
	if res.Trunk.State == "" {
		res.Trunk = events.TrunkState{State: "unknown"}
	}
	if err := a.restore(ctx, inf); err != nil {
		res.Outcome = events.OutcomeFailed
		res.Reason = reason + "; restoring the previous state failed: " + err.Error()
	}
	a.mu.Lock()
	applied := a.journal.Applied
	a.mu.Unlock()
	rc := a.ver.reload(ctx)
	rc.Name = "rollback_" + rc.Name
	res.Checks = append(res.Checks, rc)
	if !rc.Passed && res.Outcome == events.OutcomeRolledBack {
		// The previous files are back, but Asterisk did not read them: it may
		// still run the failed revision. That is not a rollback.
		res.Outcome = events.OutcomeFailed
		res.Reason += "; the previous files are back but the reload failed (" + rc.Detail + "): Asterisk reads them when it reloads or starts"
	}
	if applied.Revision > 0 && applied.Trunk != nil && rc.Passed {
		// No probe here: the far side may run another revision, and a failed
		// probe is an authentication failure its fail2ban counts. The
		// orchestrator puts a failed site back and orders the probe of the
		// restored revision once both sides run it.
		v := a.ver.checks(ctx, *applied.Trunk, applied.Revision)
		for _, c := range v.Checks {
			c.Name = "rollback_" + c.Name
			res.Checks = append(res.Checks, c)
		}
		if !v.Passed() {
			res.Reason += fmt.Sprintf("; the restored revision %d does not verify either", applied.Revision)
		}
	}
	if res.Outcome == events.OutcomeRolledBack && applied.Revision > 0 && applied.Revision < res.Revision {
		res.RestoredRevision = applied.Revision
	}
	hashes := map[string]string{}
	for name := range inf.Prev {
		if b, ok, _ := readOptional(a.path(name)); ok {
			hashes[name] = sha256Hex(b)
		}
	}
	a.mu.Lock()
	a.journal.Applied.Hashes = hashes
	if inf.Revision >= a.journal.LastSeen {
		a.journal.LastSeen, a.journal.LastSeenRollout = inf.Revision, inf.Rollout
	}
	a.journal.InFlight = nil
	a.lastOutcome, a.lastProbe = res.Outcome, probeVerdictOf(res.Probe)
	j := a.journal
	a.mu.Unlock()
	if err := a.state.saveJournal(j); err != nil {
		a.log.Error("save journal", "err", err)
	}
	res.Timings[events.PhaseRollback] = msSince(phase)
	res.FinishedAt = time.Now().UTC()
	return res
}

// restore puts back the bytes (and objects) kept before an apply. A file that
// did not exist is replaced by an empty managed file rather than removed: the
// parent's #include still names it, and a missing target would make Asterisk
// reject the parent.
func (a *Agent) restore(ctx context.Context, inf InFlight) error {
	var errs []error
	if a.objects != nil && len(inf.Objects) > 0 {
		if err := a.objects.Restore(ctx, inf.Objects); err != nil {
			errs = append(errs, fmt.Errorf("restore objects: %w", err))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(inf.Prev)) {
		var data []byte
		if inf.Prev[name] {
			b, err := os.ReadFile(a.state.prevPath(name))
			if err != nil {
				errs = append(errs, fmt.Errorf("read kept bytes of %s: %w", name, err))
				continue
			}
			data = b
		} else {
			data = []byte(fmt.Sprintf("; Managed by pbxfleet (%s). No trunk is configured here: revision %d was rolled back.\n", a.side.Program, inf.Revision))
		}
		if err := writeAtomic(a.path(name), data, 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// finishRejected reports a desired state the node refuses (unsafe value, a
// secret it cannot open). Nothing was written, so the revision does not count as
// handled: a hostile put at a huge revision must not make every later, valid
// revision look stale.
func (a *Agent) finishRejected(d events.Desired, reason string) events.Result {
	res := a.rejected(d.Revision, d.Rollout, reason)
	a.mu.Lock()
	a.lastOutcome, a.lastProbe = events.OutcomeRejected, ""
	a.mu.Unlock()
	return res
}

func (a *Agent) finishFailed(res events.Result, reason string) events.Result {
	res.Outcome, res.Reason = events.OutcomeFailed, reason
	res.FinishedAt = time.Now().UTC()
	res.Trunk = events.TrunkState{State: "unknown"}
	a.mu.Lock()
	a.lastOutcome, a.lastProbe = events.OutcomeFailed, probeVerdictOf(res.Probe)
	a.mu.Unlock()
	return res
}

func (a *Agent) saveInFlight(inf *InFlight) error {
	a.mu.Lock()
	cp := *inf
	a.journal.InFlight = &cp
	j := a.journal
	a.mu.Unlock()
	if err := a.state.saveJournal(j); err != nil {
		return fmt.Errorf("journal revision %d %s: %w", inf.Revision, inf.Phase, err)
	}
	return nil
}

func (a *Agent) openSecret(t events.Trunk) (string, error) {
	if t.SealedSecret == "" {
		return t.Secret, nil
	}
	if a.secrets == nil {
		return "", errors.New("the secret is sealed but this node has no secret_key_file to open it")
	}
	s, err := a.secrets.Open(t.SealedSecret, t.SealedBy)
	if err != nil {
		return "", fmt.Errorf("open sealed secret: %w", err)
	}
	return s, nil
}

func (a *Agent) path(name string) string { return filepath.Join(a.cfg.ConfigDir, name) }

// AppliedRevision returns the revision the host runs (0 when none).
func (a *Agent) AppliedRevision() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.journal.Applied.Revision
}

func withoutSecret(t events.Trunk) *events.Trunk {
	t.Secret, t.SealedSecret, t.SealedBy = "", "", ""
	return &t
}

func msSince(t time.Time) int64 { return time.Since(t).Milliseconds() }

// probeVerdictOf returns the verdict of a probe call, "" when none was made.
func probeVerdictOf(p *events.Probe) string {
	if p == nil {
		return ""
	}
	return p.Verdict
}

func probeVerdict(p *events.Probe) string {
	if p == nil {
		return "none"
	}
	return p.Verdict + " (" + p.DialStatus + ":" + fmt.Sprint(p.HangupCause) + ")"
}

// LoadSecretOpener reads the node's curve seed from path.
func LoadSecretOpener(path string) (SecretOpener, error) {
	kp, err := seal.LoadKey(path)
	if err != nil {
		return nil, err
	}
	return seal.NewOpener(kp), nil
}

// routeProbe returns the number of the route probe when the agent's objects
// prove their outbound route with a call.
func (a *Agent) routeProbe(t events.Trunk) (string, bool) {
	rp, ok := a.objects.(RouteProber)
	if !ok {
		return "", false
	}
	return rp.RouteProbeNumber(t)
}
