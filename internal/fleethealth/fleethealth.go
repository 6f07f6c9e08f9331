// Package fleethealth is the fleet-health rule: it joins a node's desired state
// (KV pbxfleet_desired) with its last status (KV pbxfleet_status) and says
// whether the node is healthy and, if not, why. `pbxfleet status` and the web
// page (services/web) both judge nodes with Judge, so they never disagree.
package fleethealth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pbxfleet/pbxfleet/events"
)

// Node is one node as `pbxfleet status` shows it.
type Node struct {
	Node            string    `json:"node"`
	Site            string    `json:"site"`
	Role            string    `json:"role"`
	DesiredRevision uint64    `json:"desired_revision"`
	AppliedRevision uint64    `json:"applied_revision"`
	Trunk           string    `json:"trunk"`
	RTTMS           float64   `json:"rtt_ms"`
	Drift           bool      `json:"drift"`
	DriftFiles      []string  `json:"drift_files,omitempty"`
	LastSeen        time.Time `json:"last_seen,omitzero"`
	Healthy         bool      `json:"healthy"`
	Problem         string    `json:"problem,omitempty"`
}

// Input is what is known of one node: its desired state and its status, each
// absent (nil, no error), unreadable (an error) or read.
type Input struct {
	Desired    *events.Desired
	DesiredErr error
	Status     *events.Status
	StatusErr  error
}

// Judge returns the node id's view from in. A node is unhealthy when it has no
// readable status (it stopped reporting: the entry expired), runs another
// revision than its desired one, its managed files drifted, or its own status
// says so (its trunk cannot carry calls).
func Judge(id string, in Input) Node {
	site, role, _ := events.ParseNodeID(id)
	v := Node{Node: id, Site: site, Role: role}
	switch {
	case in.DesiredErr != nil:
		v.Problem = "desired state unreadable: " + in.DesiredErr.Error()
	case in.Desired != nil:
		v.DesiredRevision = in.Desired.Revision
	}
	seen := false
	switch {
	case in.StatusErr != nil:
		v.Problem = "status unreadable: " + in.StatusErr.Error()
	case in.Status != nil:
		st := in.Status
		seen = true
		v.AppliedRevision, v.Trunk, v.RTTMS = st.AppliedRevision, st.Trunk.State, st.Trunk.RTTMS
		v.Drift, v.DriftFiles, v.LastSeen, v.Healthy = st.Drift, st.DriftFiles, st.At, st.Healthy
		if !st.Healthy && v.Problem == "" {
			v.Problem = st.Detail
		}
	}
	switch {
	case !seen:
		v.Healthy, v.Trunk = false, "-"
		if v.Problem == "" {
			v.Problem = "no status: the agent is not reporting"
		}
	case v.DesiredRevision != 0 && v.AppliedRevision != v.DesiredRevision:
		v.Healthy = false
		if v.Problem == "" {
			v.Problem = fmt.Sprintf("runs revision %d, desired %d", v.AppliedRevision, v.DesiredRevision)
		}
	case v.Drift:
		v.Healthy = false
	}
	return v
}

// Read reads every node's desired state and status now and judges each node,
// sorted by node id. A node with a desired state and no status entry (it
// expired: the node stopped reporting) is listed as unhealthy.
func Read(ctx context.Context, js jetstream.JetStream) ([]Node, error) {
	in := map[string]*Input{}
	get := func(id string) *Input {
		if v, ok := in[id]; ok {
			return v
		}
		v := &Input{}
		in[id] = v
		return v
	}
	dkv, err := js.KeyValue(ctx, events.BucketDesired)
	if err != nil {
		return nil, fmt.Errorf("fleet status: %w", err)
	}
	if err := EachEntry(ctx, dkv, func(e jetstream.KeyValueEntry) {
		v := get(e.Key())
		d, err := events.DecodeDesired(e.Value(), nil, e.Key())
		if err != nil {
			v.DesiredErr = err
			return
		}
		v.Desired = &d
	}); err != nil {
		return nil, err
	}
	skv, err := js.KeyValue(ctx, events.BucketStatus)
	if err != nil {
		return nil, fmt.Errorf("fleet status: %w", err)
	}
	if err := EachEntry(ctx, skv, func(e jetstream.KeyValueEntry) {
		v := get(e.Key())
		st, err := events.DecodeStatus(e.Value(), nil, e.Key())
		if err != nil {
			v.StatusErr = err
			return
		}
		v.Status = &st
	}); err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(in))
	for id, v := range in {
		out = append(out, Judge(id, *v))
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

// EachEntry calls fn with every entry of kv, key by key.
func EachEntry(ctx context.Context, kv jetstream.KeyValue, fn func(jetstream.KeyValueEntry)) error {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list %s: %w", kv.Bucket(), err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get %s %s: %w", kv.Bucket(), k, err)
		}
		fn(e)
	}
	return nil
}
