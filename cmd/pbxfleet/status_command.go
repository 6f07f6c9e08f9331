package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/olekukonko/tablewriter"
	"github.com/spf13/cobra"

	"github.com/pbxfleet/pbxfleet/events"
)

// nodeView is one node as `pbxfleet status` shows it.
type nodeView struct {
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

// fleetStatus reads every node's desired revision and status. A node with a
// desired state and no status entry (it expired: the node stopped reporting) is
// listed as unhealthy.
func fleetStatus(ctx context.Context, js jetstream.JetStream) ([]nodeView, error) {
	views := map[string]*nodeView{}
	get := func(node string) *nodeView {
		if v, ok := views[node]; ok {
			return v
		}
		site, role, _ := events.ParseNodeID(node)
		v := &nodeView{Node: node, Site: site, Role: role}
		views[node] = v
		return v
	}
	dkv, err := js.KeyValue(ctx, events.BucketDesired)
	if err != nil {
		return nil, fmt.Errorf("fleet status: %w", err)
	}
	if err := eachEntry(ctx, dkv, func(e jetstream.KeyValueEntry) {
		v := get(e.Key())
		d, err := events.DecodeDesired(e.Value(), nil, e.Key())
		if err != nil {
			v.Problem = "desired state unreadable: " + err.Error()
			return
		}
		v.DesiredRevision = d.Revision
	}); err != nil {
		return nil, err
	}
	skv, err := js.KeyValue(ctx, events.BucketStatus)
	if err != nil {
		return nil, fmt.Errorf("fleet status: %w", err)
	}
	seen := map[string]bool{}
	if err := eachEntry(ctx, skv, func(e jetstream.KeyValueEntry) {
		v := get(e.Key())
		st, err := events.DecodeStatus(e.Value(), nil, e.Key())
		if err != nil {
			v.Problem = "status unreadable: " + err.Error()
			return
		}
		seen[e.Key()] = true
		v.AppliedRevision, v.Trunk, v.RTTMS = st.AppliedRevision, st.Trunk.State, st.Trunk.RTTMS
		v.Drift, v.DriftFiles, v.LastSeen, v.Healthy = st.Drift, st.DriftFiles, st.At, st.Healthy
		if !st.Healthy && v.Problem == "" {
			v.Problem = st.Detail
		}
	}); err != nil {
		return nil, err
	}
	out := make([]nodeView, 0, len(views))
	for _, v := range views {
		switch {
		case !seen[v.Node]:
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
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b nodeView) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

func eachEntry(ctx context.Context, kv jetstream.KeyValue, fn func(jetstream.KeyValueEntry)) error {
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

type statusFlags struct {
	nats   natsFlags
	output string
	sites  []string
}

func newStatusCommand() *cobra.Command {
	f := &statusFlags{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the fleet now: per node revision, trunk state, last seen, drift",
		Long: `status reads what every node last reported (KV pbxfleet_status) next to what it
should run (KV pbxfleet_desired). A node is unhealthy when it stopped reporting, runs
another revision than its desired one, its managed files drifted (edited by hand), or
its trunk does not answer qualify. Exit status 1 when any node is unhealthy, 2 on bad
input (a --site no node belongs to).`,
		Example: `  pbxfleet status
  pbxfleet status --site bsas-1 --output json
  pbxfleet status --nats-url nats://hub.example:4222 --creds ops.creds`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runStatus(cmd, f) },
	}
	f.nats.register(cmd.Flags())
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "text or json")
	cmd.Flags().StringSliceVar(&f.sites, "site", nil, "only these sites (repeatable)")
	return cmd
}

func runStatus(cmd *cobra.Command, f *statusFlags) error {
	if f.output != "text" && f.output != "json" {
		return &exitError{code: 2, err: fmt.Errorf("--output %q: want text or json", f.output)}
	}
	nc, js, err := f.nats.connect(cmd.Context(), "pbxfleet status")
	if err != nil {
		return err
	}
	defer nc.Close()
	views, err := fleetStatus(cmd.Context(), js)
	if err != nil {
		return err
	}
	if len(f.sites) > 0 {
		var unknown []string
		for _, site := range f.sites {
			if !slices.ContainsFunc(views, func(v nodeView) bool { return v.Site == site }) {
				unknown = append(unknown, fmt.Sprintf("%q", clipValue(site)))
			}
		}
		if len(unknown) > 0 {
			return &exitError{code: 2, err: fmt.Errorf("--site %s: no node of such a site has a desired state or a status", strings.Join(unknown, ", "))}
		}
		views = slices.DeleteFunc(views, func(v nodeView) bool { return !slices.Contains(f.sites, v.Site) })
	}
	unhealthy := 0
	for _, v := range views {
		if !v.Healthy {
			unhealthy++
		}
	}
	w := cmd.OutOrStdout()
	if f.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"nodes": views, "unhealthy": unhealthy}); err != nil {
			return err
		}
	} else {
		printStatusTable(w, views, time.Now())
		fmt.Fprintf(w, "%d nodes, %d unhealthy\n", len(views), unhealthy)
	}
	if unhealthy > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d nodes unhealthy", unhealthy, len(views))}
	}
	return nil
}

func printStatusTable(w io.Writer, views []nodeView, now time.Time) {
	tw := tablewriter.NewWriter(w)
	tw.Header("NODE", "DESIRED", "APPLIED", "TRUNK", "RTT", "DRIFT", "LAST SEEN", "HEALTH")
	for _, v := range views {
		health := "ok"
		if !v.Healthy {
			health = "UNHEALTHY: " + truncate(v.Problem, 60)
		}
		drift := "-"
		if v.Drift {
			drift = strings.Join(v.DriftFiles, ",")
		}
		seen := "never"
		if !v.LastSeen.IsZero() {
			seen = now.Sub(v.LastSeen).Round(time.Second).String() + " ago"
		}
		_ = tw.Append(v.Node, fmt.Sprint(v.DesiredRevision), fmt.Sprint(v.AppliedRevision), v.Trunk,
			fmt.Sprintf("%.1f ms", v.RTTMS), drift, seen, health)
	}
	_ = tw.Render()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
