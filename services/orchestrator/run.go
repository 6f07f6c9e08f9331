package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pbxfleet/pbxfleet/internal/wait"
)

// Run drives a rollout until it is terminal, or paused with no site in flight,
// and returns its state. It is how a rollout is driven after Start, Resume,
// Abort or Rollback, and how a new process picks up a rollout whose driver
// died: it reads the record, observes the results from where the record left
// off, and never puts a revision a desired key already holds. It passes again
// on each new result (gathered for the batch window), on a deadline or the end
// of a bake, and when someone else writes the record (pause, abort, ...). A
// pass that fails on a NATS error is retried after the retry delay. It returns
// the last state and an error wrapping ctx's error when ctx ends, or
// ErrRolloutNotFound, ErrCorruptState or ErrConflict.
func (e *Engine) Run(ctx context.Context, id string) (Rollout, error) {
	r, _, err := e.load(ctx, id)
	if err != nil {
		return r, fmt.Errorf("run rollout: %w", err)
	}
	h, err := e.handles(ctx)
	if err != nil {
		return r, fmt.Errorf("run rollout %s: %w", id, err)
	}
	f, err := e.openFeed(ctx, r.ResultSeq+1)
	if err != nil {
		return r, fmt.Errorf("run rollout %s: %w", id, err)
	}
	defer f.close()
	// Only the revision is needed to notice someone else's write.
	w, err := h.rollouts.Watch(ctx, StateKey(id), jetstream.UpdatesOnly(), jetstream.MetaOnly())
	if err != nil {
		return r, fmt.Errorf("run rollout %s: watch record: %w", id, err)
	}
	defer func() { _ = w.Stop() }()
	updates := w.Updates()

	d := e.newDriver(id, f)
	log := e.log.With("rollout", id)
	log.Info("driving rollout", "phase", r.Phase, "wave", r.Wave)
	for {
		next, wake, again, err := d.pass(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return r, fmt.Errorf("run rollout %s: %w", id, ctx.Err())
			}
			if permanent(err) {
				return r, fmt.Errorf("run rollout: %w", err)
			}
			log.Warn("reconcile pass failed; retrying", "err", err)
			if err := wait.Sleep(ctx, e.retryDelay); err != nil {
				return r, fmt.Errorf("run rollout %s: %w", id, err)
			}
			continue
		}
		r = next
		if r.Phase.Terminal() || (r.Phase == PhasePaused && r.Counters.InFlight == 0) {
			log.Info("rollout driven", "phase", r.Phase, "reason", r.Reason)
			return r, nil
		}
		if again {
			continue
		}
		if err := e.await(ctx, d, updates, wake); err != nil {
			return r, fmt.Errorf("run rollout %s: %w", id, err)
		}
	}
}

// healEvery is how often a waiting driver checks that its results feed keeps
// up with the stream (feed.heal).
const healEvery = time.Second

// await blocks until something may change the rollout: new results (then it
// gathers more for the batch window), a write to the record by someone else,
// or the wake time.
func (e *Engine) await(ctx context.Context, d *driver, updates <-chan jetstream.KeyValueEntry, wake time.Time) error {
	var timer <-chan time.Time
	if !wake.IsZero() {
		t := time.NewTimer(max(0, time.Until(wake)))
		defer t.Stop()
		timer = t.C
	}
	// Level-triggered, besides the feed: a results consumer stalled by a
	// JetStream leader change would otherwise hold results back until a deadline.
	heal := time.NewTicker(healEvery)
	defer heal.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer:
			return nil
		case <-heal.C:
			h, err := e.handles(ctx)
			if err != nil {
				continue
			}
			if read, err := d.feed.heal(ctx, h.results); err != nil {
				e.log.Debug("check the results feed", "rollout", d.id, "err", err)
			} else if read {
				return wait.Sleep(ctx, e.batchWindow)
			}
		case <-d.feed.notify:
			return wait.Sleep(ctx, e.batchWindow)
		case ent, ok := <-updates:
			if !ok {
				updates = nil // watcher gone; results and timers still drive
				continue
			}
			if ent == nil || ent.Revision() == d.lastRev() {
				continue // our own write
			}
			return nil
		}
	}
}

// permanent reports whether retrying a pass cannot help.
func permanent(err error) bool {
	return errors.Is(err, ErrRolloutNotFound) || errors.Is(err, ErrCorruptState) || errors.Is(err, ErrConflict)
}
