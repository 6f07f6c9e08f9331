package orchestrator

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Watch returns the rollout's state now and on every change, for live
// progress, until ctx ends (then the channel is closed). A slow reader loses
// intermediate states, never the latest. It returns an error wrapping
// ErrRolloutNotFound when there is no such rollout.
func (e *Engine) Watch(ctx context.Context, id string) (<-chan Rollout, error) {
	if _, err := e.Get(ctx, id); err != nil {
		return nil, fmt.Errorf("watch rollout: %w", err)
	}
	h, err := e.handles(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch rollout %s: %w", id, err)
	}
	w, err := h.rollouts.Watch(ctx, StateKey(id))
	if err != nil {
		return nil, fmt.Errorf("watch rollout %s: %w", id, err)
	}
	out := make(chan Rollout, 1)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case ent, ok := <-w.Updates():
				if !ok {
					return
				}
				if ent == nil || ent.Operation() != jetstream.KeyValuePut {
					continue
				}
				var r Rollout
				if err := json.Unmarshal(ent.Value(), &r); err != nil {
					e.log.Warn("watch rollout: unreadable record", "rollout", id, "err", err)
					continue
				}
				offer(out, r)
			}
		}
	}()
	return out, nil
}

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
