package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pbxfleet/pbxfleet/events"
)

// keyState is what a node's desired key holds now.
type keyState struct {
	exists bool
	bad    bool   // exists but does not decode (d is empty)
	seq    uint64 // KV revision of the entry, for compare-and-set
	d      events.Desired
}

// readDesired reads and decodes a node's desired key. It returns an error
// wrapping ErrBadDesired when the value does not decode.
func (e *Engine) readDesired(ctx context.Context, node string) (keyState, error) {
	h, err := e.handles(ctx)
	if err != nil {
		return keyState{}, err
	}
	octx, cancel := opContext(ctx)
	ent, err := h.desired.Get(octx, node)
	cancel()
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return keyState{}, nil
	}
	if err != nil {
		return keyState{}, fmt.Errorf("read desired %s: %w", node, err)
	}
	d, err := events.DecodeDesired(ent.Value(), nil, node)
	if err != nil {
		return keyState{seq: ent.Revision(), exists: true, bad: true}, fmt.Errorf("read desired %s: %w: %w", node, ErrBadDesired, err)
	}
	return keyState{exists: true, seq: ent.Revision(), d: d}, nil
}

// kvOpTimeout bounds one read or put of a desired key. A request lost in a
// JetStream leader change otherwise costs jetstream's default 5 s; both are
// safe to retry sooner (ensurePut reads the key before each compare-and-set
// put, so a put that landed after all is seen as putAlready).
const kvOpTimeout = 2 * time.Second

// opContext returns ctx bounded by kvOpTimeout, unless ctx ends sooner.
func opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < kvOpTimeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, kvOpTimeout)
}

// putOutcome is what ensurePut did.
type putOutcome int

const (
	// putDone: this call put the revision.
	putDone putOutcome = iota
	// putAlready: the key already held the revision from this rollout (a driver
	// before a crash put it); nothing was put.
	putAlready
	// putConflict: the key holds something the caller did not expect; nothing
	// was put.
	putConflict
)

// ensurePut puts d on its node's key unless the key already holds d's revision
// from d's rollout, so a revision is put at most once whoever drives. expect
// says whether the key's present value is the one d replaces; the put is a
// compare-and-set on the key's KV revision, so two drivers cannot both put.
// On putConflict the returned keyState says what the key holds.
func (e *Engine) ensurePut(ctx context.Context, d events.Desired, expect func(keyState) bool) (putOutcome, keyState, error) {
	h, err := e.handles(ctx)
	if err != nil {
		return 0, keyState{}, err
	}
	data, _, err := events.Encode(events.SourceOrchestrator, d)
	if err != nil {
		return 0, keyState{}, fmt.Errorf("put desired %s rev %d: %w", d.Node, d.Revision, err)
	}
	for range maxCASAttempts {
		ks, err := e.readDesired(ctx, d.Node)
		if err != nil && !errors.Is(err, ErrBadDesired) {
			return 0, ks, err
		}
		if err == nil && ks.exists && ks.d.Rollout == d.Rollout && ks.d.Revision == d.Revision {
			return putAlready, ks, nil
		}
		if !expect(ks) {
			return putConflict, ks, nil
		}
		octx, cancel := opContext(ctx)
		if ks.exists {
			_, err = h.desired.Update(octx, d.Node, data, ks.seq)
		} else {
			_, err = h.desired.Create(octx, d.Node, data)
		}
		cancel()
		switch {
		case err == nil:
			return putDone, ks, nil
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists):
			continue // someone wrote meanwhile: look again
		default:
			return 0, ks, fmt.Errorf("put desired %s rev %d: %w", d.Node, d.Revision, err)
		}
	}
	return 0, keyState{}, fmt.Errorf("put desired %s rev %d: %w", d.Node, d.Revision, ErrConflict)
}

// floor returns the highest revision a node says it handled or runs (its
// status; 0 without one): a revision put for it must be above it. After the
// store was lost, or the key deleted, the key no longer says so.
func (e *Engine) floor(ctx context.Context, node string) (uint64, error) {
	h, err := e.handles(ctx)
	if err != nil {
		return 0, err
	}
	octx, cancel := opContext(ctx)
	ent, err := h.status.Get(octx, node)
	cancel()
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read status %s: %w", node, err)
	}
	st, err := events.DecodeStatus(ent.Value(), nil, node)
	if err != nil {
		return 0, nil //nolint:nilerr // an unreadable status says nothing of the node's revisions
	}
	return max(st.HandledRevision, st.AppliedRevision), nil
}

// applied reports whether a node runs revision rev: its status says so, or its
// last result is a converged apply of rev. The status bucket expires stale
// entries, so the result stream is the fallback for a node that is quiet now. A
// node whose status reports drift (its managed files were edited by hand) does
// not run rev any more: it is put again, which rewrites its files.
func (e *Engine) applied(ctx context.Context, node string, rev uint64) (bool, error) {
	h, err := e.handles(ctx)
	if err != nil {
		return false, err
	}
	ent, err := h.status.Get(ctx, node)
	switch {
	case err == nil:
		if st, derr := events.DecodeStatus(ent.Value(), nil, node); derr == nil {
			if st.Drift {
				return false, nil
			}
			if st.AppliedRevision == rev {
				return true, nil
			}
		}
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return false, fmt.Errorf("read status %s: %w", node, err)
	}
	site, role, _ := events.ParseNodeID(node)
	msg, err := h.results.GetLastMsgForSubject(ctx, events.ResultSubject(site, role))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read last result of %s: %w", node, err)
	}
	res, err := events.DecodeResult(msg.Data, msg.Header, msg.Subject)
	if err != nil {
		return false, nil //nolint:nilerr // an unreadable result proves nothing either way
	}
	return res.Revision == rev && res.Outcome == events.OutcomeConverged, nil
}

// sameTrunk compares two intents as the wire sees them (JSON), ignoring the
// difference between a nil and an empty codec list.
func sameTrunk(a, b events.Trunk) bool {
	norm := func(t events.Trunk) []byte {
		if t.PBXCodecs == nil {
			t.PBXCodecs = []string{}
		}
		if t.OMLCodecs == nil {
			t.OMLCodecs = []string{}
		}
		out, _ := json.Marshal(t)
		return out
	}
	return string(norm(a)) == string(norm(b))
}
