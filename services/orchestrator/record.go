package orchestrator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/pbxfleet/pbxfleet/events"
)

// A rollout is stored as one small header and one key per site, so that a
// write is proportional to what changed and no server limit bounds the size of
// a fleet:
//
//	rollout.<id>              the header: phase, reason, waves, counters, history
//	rollout.<id>.site.<site>  one site: its wave, outcome and nodes
//
// The driver is the only writer of the site keys (each a compare-and-set on
// its own revision); operators' verbs write the header only (compare-and-set
// too). Readers assemble the whole Rollout (Get, Watch).

// siteKeyInfix separates a rollout id from a site in a site key.
const siteKeyInfix = events.RolloutsSiteInfix

// SiteKey returns the key of one site of a rollout, rollout.<id>.site.<site>.
func SiteKey(id, site string) string { return StateKey(id) + siteKeyInfix + site }

// sitesFilter matches every site key of a rollout.
func sitesFilter(id string) string { return StateKey(id) + siteKeyInfix + "*" }

// headerOf returns the header as stored: r without its sites.
func headerOf(r Rollout) ([]byte, error) {
	r.Sites = nil
	return json.Marshal(r)
}

// loadHeader reads a rollout's header (Sites is empty) and its KV revision.
func (e *Engine) loadHeader(ctx context.Context, id string) (Rollout, uint64, error) {
	h, err := e.handles(ctx)
	if err != nil {
		return Rollout{}, 0, err
	}
	ent, err := h.rollouts.Get(ctx, StateKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Rollout{}, 0, fmt.Errorf("load rollout %q: %w", id, ErrRolloutNotFound)
	}
	if err != nil {
		return Rollout{}, 0, fmt.Errorf("load rollout %s: %w", id, err)
	}
	var r Rollout
	if err := json.Unmarshal(ent.Value(), &r); err != nil {
		return Rollout{}, 0, fmt.Errorf("load rollout %s: %w: %w", id, ErrCorruptState, err)
	}
	r.Sites = nil
	return r, ent.Revision(), nil
}

// siteRecord is one stored site: its state, its bytes as stored (to tell a
// change) and its KV revision (for compare-and-set).
type siteRecord struct {
	s    SiteState
	data []byte
	rev  uint64
}

// loadSites reads every site of a rollout, in plan order, with one watch of
// the site keys (fast for 10,000 sites, unlike one get each).
func (e *Engine) loadSites(ctx context.Context, id string) ([]siteRecord, error) {
	h, err := e.handles(ctx)
	if err != nil {
		return nil, err
	}
	w, err := h.rollouts.Watch(ctx, sitesFilter(id), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("load sites of rollout %s: %w", id, err)
	}
	defer func() { _ = w.Stop() }()
	var out []siteRecord
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("load sites of rollout %s: %w", id, ctx.Err())
		case ent, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("load sites of rollout %s: the watch ended", id)
			}
			if ent == nil { // every current entry was delivered
				slices.SortFunc(out, func(a, b siteRecord) int { return a.s.Index - b.s.Index })
				return out, nil
			}
			var s SiteState
			if err := json.Unmarshal(ent.Value(), &s); err != nil {
				return nil, fmt.Errorf("load site %s: %w: %w", ent.Key(), ErrCorruptState, err)
			}
			out = append(out, siteRecord{s: s, data: ent.Value(), rev: ent.Revision()})
		}
	}
}

// load reads a whole rollout: its header and every site.
func (e *Engine) load(ctx context.Context, id string) (Rollout, uint64, error) {
	r, rev, err := e.loadHeader(ctx, id)
	if err != nil {
		return r, 0, err
	}
	recs, err := e.loadSites(ctx, id)
	if err != nil {
		return r, 0, err
	}
	r.Sites = make([]SiteState, len(recs))
	for i, rec := range recs {
		r.Sites[i] = rec.s
	}
	return r, rev, nil
}

// saveHeader writes r's header over KV revision rev (compare-and-set) and
// returns the new revision; a conflict returns an error wrapping
// jetstream.ErrKeyRevisionMismatch.
func (e *Engine) saveHeader(ctx context.Context, r Rollout, rev uint64) (uint64, error) {
	h, err := e.handles(ctx)
	if err != nil {
		return 0, err
	}
	data, err := headerOf(r)
	if err != nil {
		return 0, fmt.Errorf("save rollout %s: %w", r.ID, err)
	}
	n, err := h.rollouts.Update(ctx, StateKey(r.ID), data, rev)
	if err != nil {
		return 0, fmt.Errorf("save rollout %s at revision %d: %w", r.ID, rev, err)
	}
	return n, nil
}

// saveSites writes the sites of r whose bytes differ from recs (the state as
// last read or written, index for index), each a compare-and-set on its own
// revision, and updates recs. A conflict (another driver wrote the site)
// returns an error wrapping jetstream.ErrKeyRevisionMismatch.
func (e *Engine) saveSites(ctx context.Context, r Rollout, recs []siteRecord) error {
	h, err := e.handles(ctx)
	if err != nil {
		return err
	}
	var changed []int
	fresh := make([][]byte, len(r.Sites))
	for i, s := range r.Sites {
		b, err := json.Marshal(s)
		if err != nil {
			return fmt.Errorf("save rollout %s site %s: %w", r.ID, s.Site, err)
		}
		if i >= len(recs) || !bytes.Equal(b, recs[i].data) {
			fresh[i] = b
			changed = append(changed, i)
		}
	}
	return forEach(ctx, len(changed), e.workers, func(ctx context.Context, k int) error {
		i := changed[k]
		key := SiteKey(r.ID, r.Sites[i].Site)
		var (
			n   uint64
			err error
		)
		if recs[i].rev == 0 {
			n, err = h.rollouts.Create(ctx, key, fresh[i])
		} else {
			n, err = h.rollouts.Update(ctx, key, fresh[i], recs[i].rev)
		}
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyExists) {
				err = fmt.Errorf("%w: %w", jetstream.ErrKeyRevisionMismatch, err)
			}
			return fmt.Errorf("save rollout %s site %s: %w", r.ID, r.Sites[i].Site, err)
		}
		recs[i] = siteRecord{s: r.Sites[i], data: fresh[i], rev: n} // each worker owns one index
		return nil
	})
}

// siteOfKey returns the site a site key of rollout id names, and whether key is one.
func siteOfKey(id, key string) (string, bool) {
	return strings.CutPrefix(key, StateKey(id)+siteKeyInfix)
}
