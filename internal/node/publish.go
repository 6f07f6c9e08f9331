package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pbxfleet/pbxfleet/events"
)

// publishResult stores the result in the outbox, then publishes it with its event
// id as Nats-Msg-Id so that a resend after a crash deduplicates.
func (a *Agent) publishResult(ctx context.Context, h *busHandles, res events.Result) {
	a.metrics.observeResult(res)
	data, id, err := events.Encode(events.NodeSource(a.site, a.role), res)
	if err != nil {
		a.log.Error("encode result", "revision", res.Revision, "err", err)
		return
	}
	if err := a.state.saveOutbox(id, data); err != nil {
		a.log.Error("keep result in outbox", "err", err)
	}
	a.flushOutbox(ctx, h)
}

// flushOutbox publishes every pending result in order and removes each one that
// JetStream acknowledged.
func (a *Agent) flushOutbox(ctx context.Context, h *busHandles) {
	paths, err := a.state.outbox()
	if err != nil {
		a.log.Error("read outbox", "err", err)
		return
	}
	subject := events.ResultSubject(a.site, a.role)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		id := strings.TrimSuffix(filepath.Base(p), ".json")
		pctx, cancel := context.WithTimeout(ctx, busOpTimeout)
		_, err = h.js.PublishMsg(pctx, &nats.Msg{Subject: subject, Data: data, Header: nats.Header(events.PublishHeader(id))})
		cancel()
		if err != nil {
			a.log.Warn("publish result; kept in the outbox for the next try", "id", id, "err", err)
			return
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.log.Error("clear outbox entry", "path", p, "err", err)
		}
	}
}

// Status returns the node's current status: applied revision, trunk state read
// now from Asterisk, and drift of the managed files.
func (a *Agent) Status(ctx context.Context) events.Status {
	a.mu.Lock()
	j := a.journal
	outcome, lastProbe := a.lastOutcome, a.lastProbe
	a.mu.Unlock()
	st := events.Status{
		Node: a.node, AppliedRevision: j.Applied.Revision, HandledRevision: j.LastSeen, Outcome: outcome,
		LastProbe: lastProbe, Version: a.version, At: time.Now().UTC(), Trunk: events.TrunkState{State: "none"},
	}
	var details []string
	if j.Applied.Trunk != nil {
		name := a.side.trunkName(*j.Applied.Trunk)
		out, err := a.ver.run(ctx, a.side.ListCommand)
		if err == nil {
			var ts events.TrunkState
			ts, _, err = a.side.trunkState([]byte(out), name)
			if ts.State != "" {
				st.Trunk = ts
			}
		}
		if err != nil {
			st.Trunk.State = "unknown"
			details = append(details, err.Error())
		}
	}
	names := slices.Sorted(maps.Keys(j.Applied.Hashes))
	if j.InFlight != nil {
		// An apply in flight (or one a restart left awaiting its re-apply)
		// changed the files: that is not a hand edit.
		details = append(details, fmt.Sprintf("revision %d is being applied", j.InFlight.Revision))
		names = nil
	}
	for _, name := range names {
		b, ok, err := readOptional(a.path(name))
		switch {
		case err != nil:
			details = append(details, err.Error())
		case !ok:
			st.DriftFiles = append(st.DriftFiles, name)
			details = append(details, name+" is missing")
		case sha256Hex(b) != j.Applied.Hashes[name]:
			st.DriftFiles = append(st.DriftFiles, name)
			details = append(details, name+" was edited by hand")
		}
	}
	st.Drift = len(st.DriftFiles) > 0
	st.Healthy = j.Applied.Revision > 0 && st.Trunk.Reachable && !st.Drift
	switch {
	case j.Applied.Revision == 0:
		details = append(details, "no revision applied yet")
	case !st.Trunk.Reachable && st.Trunk.State != "unknown":
		details = append(details, fmt.Sprintf("trunk %s: Asterisk says it cannot carry calls now", st.Trunk.State))
	}
	st.Detail = strings.Join(details, "; ")
	return st
}

func (a *Agent) refreshStatus(ctx context.Context, h *busHandles) {
	st := a.Status(ctx)
	a.metrics.observeStatus(st)
	if st.Drift {
		a.log.Warn("drift: managed files changed outside pbxfleet", "files", st.DriftFiles)
	}
	data, _, err := events.Encode(events.NodeSource(a.site, a.role), st)
	if err != nil {
		a.log.Error("encode status", "err", err)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, busOpTimeout)
	defer cancel()
	if _, err := h.status.Put(pctx, a.node, data); err != nil {
		if ctx.Err() == nil {
			a.statusFails.fail(a.log, err)
		}
		return
	}
	a.statusFails.ok(a.log)
}
