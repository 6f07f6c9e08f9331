package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/spf13/cobra"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
	"github.com/pbxfleet/pbxfleet/internal/fleethealth"
	"github.com/pbxfleet/pbxfleet/internal/textclip"
)

type statusFlags struct {
	nats   opcli.NATSFlags
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
	f.nats.Register(cmd.Flags())
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "text or json")
	cmd.Flags().StringSliceVar(&f.sites, "site", nil, "only these sites (repeatable)")
	return cmd
}

func runStatus(cmd *cobra.Command, f *statusFlags) error {
	if f.output != "text" && f.output != "json" {
		return opcli.Invalid(fmt.Errorf("--output %q: want text or json", f.output))
	}
	nc, js, err := f.nats.Connect(cmd.Context(), "pbxfleet status")
	if err != nil {
		return err
	}
	defer nc.Close()
	views, err := fleethealth.Read(cmd.Context(), js)
	if err != nil {
		return err
	}
	if len(f.sites) > 0 {
		var unknown []string
		for _, site := range f.sites {
			if !slices.ContainsFunc(views, func(v fleethealth.Node) bool { return v.Site == site }) {
				unknown = append(unknown, fmt.Sprintf("%q", textclip.Value(site)))
			}
		}
		if len(unknown) > 0 {
			return opcli.Invalid(fmt.Errorf("--site %s: no node of such a site has a desired state or a status", strings.Join(unknown, ", ")))
		}
		views = slices.DeleteFunc(views, func(v fleethealth.Node) bool { return !slices.Contains(f.sites, v.Site) })
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
		return &opcli.ExitError{Code: opcli.ExitFailed, Err: fmt.Errorf("%d of %d nodes unhealthy", unhealthy, len(views))}
	}
	return nil
}

func printStatusTable(w io.Writer, views []fleethealth.Node, now time.Time) {
	tw := tablewriter.NewWriter(w)
	tw.Header("NODE", "DESIRED", "APPLIED", "TRUNK", "RTT", "DRIFT", "LAST SEEN", "HEALTH")
	for _, v := range views {
		health := "ok"
		if !v.Healthy {
			health = "UNHEALTHY: " + textclip.Clip(v.Problem, 60)
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
