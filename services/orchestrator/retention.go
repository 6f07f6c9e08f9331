package orchestrator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultKeepRollouts is how many rollouts keep their record and plan. A plan
// holds every node's previous intent (what a rollback puts back), so without a
// bound the rollouts bucket would grow by a fleet's worth of intents at every
// rollout.
const DefaultKeepRollouts = 20

// prune deletes the record (header and sites) and the plan keys of every
// finished rollout beyond
// the e.keep most recently written ones (a rollback of an old rollout counts as
// recent), never active (the one holding the lock). Start calls it while
// holding the lock, so no rollback of an old rollout runs meanwhile
// (Rollback takes the same lock). The plan keys go first, then the sites, then
// the header: a crash in between leaves the header, and the next prune
// finishes the job.
// It returns how many rollouts it deleted.
func (e *Engine) prune(ctx context.Context, active string) (int, error) {
	h, err := e.handles(ctx)
	if err != nil {
		return 0, err
	}
	ids, err := recordsByRecency(ctx, h.rollouts)
	if err != nil {
		return 0, fmt.Errorf("list rollouts: %w", err)
	}
	deleted := 0
	for i, id := range ids {
		if i < e.keep || id == active {
			continue
		}
		r, _, err := e.loadHeader(ctx, id)
		if err == nil && !r.Phase.Terminal() {
			continue // only the lock holder is ever driven; leave anything odd alone
		}
		if err != nil && !errors.Is(err, ErrCorruptState) {
			return deleted, err
		}
		sites, err := listTokens(ctx, h.rollouts, PlanKeyPrefix+id+".*", PlanKeyPrefix+id+".")
		if err != nil {
			return deleted, fmt.Errorf("list plan of rollout %s: %w", id, err)
		}
		err = forEach(ctx, len(sites), e.workers, func(ctx context.Context, i int) error {
			if err := h.rollouts.Purge(ctx, planKey(id, sites[i])); err != nil {
				return fmt.Errorf("delete plan of rollout %s site %s: %w", id, sites[i], err)
			}
			return nil
		})
		if err != nil {
			return deleted, err
		}
		siteKeys, err := listTokens(ctx, h.rollouts, sitesFilter(id), "")
		if err != nil {
			return deleted, fmt.Errorf("list sites of rollout %s: %w", id, err)
		}
		err = forEach(ctx, len(siteKeys), e.workers, func(ctx context.Context, i int) error {
			if err := h.rollouts.Purge(ctx, siteKeys[i]); err != nil {
				return fmt.Errorf("delete %s: %w", siteKeys[i], err)
			}
			return nil
		})
		if err != nil {
			return deleted, err
		}
		if err := h.rollouts.Purge(ctx, StateKey(id)); err != nil {
			return deleted, fmt.Errorf("delete rollout %s: %w", id, err)
		}
		deleted++
	}
	if deleted > 0 {
		// Purge leaves one marker per key; drop those older than the server's default (30 min).
		if err := h.rollouts.PurgeDeletes(ctx); err != nil {
			return deleted, fmt.Errorf("drop delete markers: %w", err)
		}
	}
	return deleted, nil
}

// recordsByRecency returns the ids of the rollout records, the most recently
// written first. It reads only the entries' metadata, not the records.
func recordsByRecency(ctx context.Context, kv jetstream.KeyValue) ([]string, error) {
	w, err := kv.Watch(ctx, StateKeyPrefix+"*", jetstream.MetaOnly(), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	type record struct {
		id  string
		rev uint64
	}
	var recs []record
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("the watch ended")
			}
			if e == nil { // every current entry was delivered
				slices.SortFunc(recs, func(a, b record) int { return cmp.Compare(b.rev, a.rev) })
				ids := make([]string, len(recs))
				for i, r := range recs {
					ids[i] = r.id
				}
				return ids, nil
			}
			if e.Key() != KeyCurrent && e.Key() != KeyLast {
				recs = append(recs, record{strings.TrimPrefix(e.Key(), StateKeyPrefix), e.Revision()})
			}
		}
	}
}

// listTokens lists the keys of kv matching filter and returns each with prefix
// cut off.
func listTokens(ctx context.Context, kv jetstream.KeyValue, filter, prefix string) ([]string, error) {
	lister, err := kv.ListKeysFiltered(ctx, filter)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range lister.Keys() {
		out = append(out, strings.TrimPrefix(k, prefix))
	}
	return out, nil
}
