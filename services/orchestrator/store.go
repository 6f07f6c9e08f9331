package orchestrator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pbxfleet/pbxfleet/events"
)

// Keys in the pbxfleet_rollouts bucket (the wire names are in events).
const (
	KeyCurrent     = events.RolloutsKeyCurrent // the lock and pointer to the active rollout
	KeyLast        = events.RolloutsKeyLast    // the most recently started rollout
	StateKeyPrefix = events.RolloutsKeyPrefix  // rollout.<id> and rollout.<id>.site.<site>
	PlanKeyPrefix  = events.RolloutsPlanPrefix // plan.<id>.<site>: the intents, secrets included
)

// StateKey returns the key of a rollout's header, rollout.<id>.
func StateKey(id string) string { return StateKeyPrefix + id }

func planKey(id, site string) string { return PlanKeyPrefix + id + "." + site }

// staleLockAfter is how old a lock naming a rollout without a record must be
// before Start takes it over (Start writes the record right after the lock).
const staleLockAfter = time.Minute

// maxCASAttempts bounds the re-read-and-retry loop of a compare-and-set update.
const maxCASAttempts = 20

type lockValue struct {
	ID    string    `json:"id"`
	Since time.Time `json:"since"`
}

// siteIntent is what plan.<id>.<site> holds: per role the intent this rollout
// puts and the one the key held before, which a restore puts back.
type siteIntent struct {
	Site  string                `json:"site"`
	Nodes map[string]nodeIntent `json:"nodes"`
}

type nodeIntent struct {
	Trunk        events.Trunk  `json:"trunk"`
	Prev         *events.Trunk `json:"prev,omitempty"`
	PrevPlanHash string        `json:"prev_plan_hash,omitempty"`
}

// handles are the buckets and the stream the engine works on.
type handles struct {
	rollouts jetstream.KeyValue
	desired  jetstream.KeyValue
	status   jetstream.KeyValue
	results  jetstream.Stream
}

// handles opens the buckets and the stream once and keeps them.
func (e *Engine) handles(ctx context.Context) (*handles, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h != nil {
		return e.h, nil
	}
	var (
		h   handles
		err error
	)
	if h.rollouts, err = e.js.KeyValue(ctx, events.BucketRollouts); err != nil {
		return nil, fmt.Errorf("open kv %s: %w", events.BucketRollouts, err)
	}
	if h.desired, err = e.js.KeyValue(ctx, events.BucketDesired); err != nil {
		return nil, fmt.Errorf("open kv %s: %w", events.BucketDesired, err)
	}
	if h.status, err = e.js.KeyValue(ctx, events.BucketStatus); err != nil {
		return nil, fmt.Errorf("open kv %s: %w", events.BucketStatus, err)
	}
	if h.results, err = e.js.Stream(ctx, events.StreamResults); err != nil {
		return nil, fmt.Errorf("open stream %s: %w", events.StreamResults, err)
	}
	e.h = &h
	return e.h, nil
}

// mutate applies fn to the rollout's header under compare-and-set, re-reading
// and retrying on a conflict, and returns the whole rollout. fn sees the header
// only (no sites; the counters are the driver's last): an operator's verb
// changes the phase, the driver does the rest. fn returns changed=false to
// leave the record as is.
func (e *Engine) mutate(ctx context.Context, id string, fn func(r *Rollout, now time.Time) (changed bool, err error)) (Rollout, error) {
	for range maxCASAttempts {
		r, rev, err := e.loadHeader(ctx, id)
		if err != nil {
			return Rollout{}, err
		}
		now := nowUTC()
		changed, err := fn(&r, now)
		if err != nil {
			return r, err
		}
		if changed {
			r.UpdatedAt = now
			if _, err := e.saveHeader(ctx, r, rev); err != nil {
				if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
					continue
				}
				return r, err
			}
		}
		whole, _, err := e.load(ctx, id)
		if err != nil {
			return r, err
		}
		return whole, nil
	}
	return Rollout{}, fmt.Errorf("update rollout %s: %w", id, ErrConflict)
}

// acquire takes the rollout lock for id. It returns nil when id already holds
// it, and an error wrapping ErrRolloutActive naming the holder otherwise. A lock
// whose rollout is terminal, or has no record long after it was taken, is stale
// (its driver died between the steps) and is taken over.
func (e *Engine) acquire(ctx context.Context, id string) error {
	h, err := e.handles(ctx)
	if err != nil {
		return err
	}
	val, _ := json.Marshal(lockValue{ID: id, Since: time.Now().UTC()})
	for range 3 {
		_, err := h.rollouts.Create(ctx, KeyCurrent, val)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("take rollout lock for %s: %w", id, err)
		}
		ent, err := h.rollouts.Get(ctx, KeyCurrent)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released meanwhile
		}
		if err != nil {
			return fmt.Errorf("read rollout lock: %w", err)
		}
		var held lockValue
		if err := json.Unmarshal(ent.Value(), &held); err != nil {
			return fmt.Errorf("read rollout lock: %w: %w", ErrCorruptState, err)
		}
		if held.ID == id {
			return nil
		}
		r, _, err := e.loadHeader(ctx, held.ID)
		switch {
		case errors.Is(err, ErrRolloutNotFound) && time.Since(held.Since) > staleLockAfter:
		case err == nil && r.Phase.Terminal():
		case err == nil:
			return fmt.Errorf("%w: rollout %s is %s", ErrRolloutActive, held.ID, r.Phase)
		case errors.Is(err, ErrRolloutNotFound):
			return fmt.Errorf("%w: rollout %s is starting", ErrRolloutActive, held.ID)
		default:
			return fmt.Errorf("take rollout lock for %s: %w", id, err)
		}
		e.log.Warn("taking over a stale rollout lock", "held_by", held.ID, "since", held.Since)
		if err := h.rollouts.Delete(ctx, KeyCurrent, jetstream.LastRevision(ent.Revision())); err != nil &&
			!errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("clear stale rollout lock of %s: %w", held.ID, err)
		}
	}
	return fmt.Errorf("take rollout lock for %s: %w", id, ErrConflict)
}

// release drops the rollout lock if id holds it.
func (e *Engine) release(ctx context.Context, id string) error {
	h, err := e.handles(ctx)
	if err != nil {
		return err
	}
	ent, err := h.rollouts.Get(ctx, KeyCurrent)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release rollout lock of %s: %w", id, err)
	}
	var held lockValue
	if err := json.Unmarshal(ent.Value(), &held); err != nil || held.ID != id {
		return nil
	}
	if err := h.rollouts.Delete(ctx, KeyCurrent, jetstream.LastRevision(ent.Revision())); err != nil &&
		!errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("release rollout lock of %s: %w", id, err)
	}
	return nil
}

// holder returns the id holding the lock, "" when free.
func (e *Engine) holder(ctx context.Context) (string, error) {
	h, err := e.handles(ctx)
	if err != nil {
		return "", err
	}
	ent, err := h.rollouts.Get(ctx, KeyCurrent)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read rollout lock: %w", err)
	}
	var held lockValue
	if err := json.Unmarshal(ent.Value(), &held); err != nil {
		return "", fmt.Errorf("read rollout lock: %w: %w", ErrCorruptState, err)
	}
	return held.ID, nil
}

// loadIntent reads the intents of one site of a rollout.
func (e *Engine) loadIntent(ctx context.Context, id, site string) (siteIntent, error) {
	h, err := e.handles(ctx)
	if err != nil {
		return siteIntent{}, err
	}
	ent, err := h.rollouts.Get(ctx, planKey(id, site))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return siteIntent{}, fmt.Errorf("load plan of rollout %s site %s: %w: no record", id, site, ErrCorruptState)
	}
	if err != nil {
		return siteIntent{}, fmt.Errorf("load plan of rollout %s site %s: %w", id, site, err)
	}
	var si siteIntent
	if err := json.Unmarshal(ent.Value(), &si); err != nil {
		return siteIntent{}, fmt.Errorf("load plan of rollout %s site %s: %w: %w", id, site, ErrCorruptState, err)
	}
	return si, nil
}

// newID returns a rollout id: UTC time and 6 random hex digits, sortable by age
// and a valid KV key token.
func newID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}
