package orchestrator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Watch returns the rollout's state now and on every change, for live
// progress, until ctx ends (then the channel is closed). A slow reader loses
// intermediate states, never the latest. It watches the header and every site
// key of the rollout and sends the assembled record at most every
// watchEmitEvery while changes come. It returns an error wrapping
// ErrRolloutNotFound when there is no such rollout.
func (e *Engine) Watch(ctx context.Context, id string) (<-chan Rollout, error) {
	if _, _, err := e.loadHeader(ctx, id); err != nil {
		return nil, fmt.Errorf("watch rollout: %w", err)
	}
	h, err := e.handles(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch rollout %s: %w", id, err)
	}
	w, err := h.rollouts.WatchFiltered(ctx, []string{StateKey(id), sitesFilter(id)}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("watch rollout %s: %w", id, err)
	}
	out := make(chan Rollout, 1)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		var (
			header  Rollout
			haveHdr bool
			sites   = map[string]SiteState{}
			synced  bool // every entry there was at the start was read
			dirty   bool
		)
		emit := func() {
			if !haveHdr || !synced || !dirty {
				return
			}
			r := header
			r.Sites = make([]SiteState, 0, len(sites))
			for _, s := range sites {
				r.Sites = append(r.Sites, s)
			}
			slices.SortFunc(r.Sites, func(a, b SiteState) int { return a.Index - b.Index })
			offer(out, r)
			dirty = false
		}
		tick := time.NewTicker(watchEmitEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				emit()
			case ent, ok := <-w.Updates():
				if !ok {
					return
				}
				if ent == nil {
					synced, dirty = true, true
					emit()
					continue
				}
				if site, ok := siteOfKey(id, ent.Key()); ok {
					var s SiteState
					if err := json.Unmarshal(ent.Value(), &s); err != nil {
						e.log.Warn("watch rollout: unreadable site", "rollout", id, "site", site, "err", err)
						continue
					}
					sites[site], dirty = s, true
					continue
				}
				var r Rollout
				if err := json.Unmarshal(ent.Value(), &r); err != nil {
					e.log.Warn("watch rollout: unreadable record", "rollout", id, "err", err)
					continue
				}
				header, haveHdr, dirty = r, true, true
				if synced && r.Phase.Terminal() {
					emit() // the end is sent at once
				}
			}
		}
	}()
	return out, nil
}

// watchEmitEvery is how often Watch sends the assembled record while changes
// come: a rollout of 10,000 sites changes far more often than anyone reads.
const watchEmitEvery = 100 * time.Millisecond

// offer puts v in a channel of capacity 1, replacing a value not yet taken.
func offer[T any](ch chan T, v T) {
	for {
		select {
		case ch <- v:
			return
		default:
			select {
			case <-ch:
			default:
			}
		}
	}
}
