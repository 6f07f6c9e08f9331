package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/omlobjects"
	"github.com/pbxfleet/pbxfleet/services/planner"
)

// Output formats of the commands that print documents.
const (
	outputText = "text"
	outputJSON = "json"
)

// planCommand holds the flag values of `pbxfleet plan`.
type planCommand struct {
	sites             []string
	output            string
	acceptWeakSecrets bool
	// withCurrent reads the current desired states from NATS (nats).
	withCurrent bool
	nats        opcli.NATSFlags
	// sealDir, with withCurrent, opens sealed secrets to compare them.
	sealDir string
	// current returns the fleet's desired states now, keyed by node id: from NATS
	// (KV pbxfleet_desired) with --current, else noCurrentState (every node new).
	current func(ctx context.Context) (map[string]events.Desired, error)
}

// noCurrentState is the current state of a fleet nothing was published to.
func noCurrentState(context.Context) (map[string]events.Desired, error) {
	return map[string]events.Desired{}, nil
}

func newPlanCommand() *cobra.Command {
	c := &planCommand{current: noCurrentState}
	cmd := &cobra.Command{
		Use:   "plan FLEET.yaml",
		Short: "Validate a fleet file and show what each node would get",
		Long: `plan reads a fleet file, checks every value that would reach an Asterisk file or a
dial string and every relation between the two sides of each trunk (docs/asterisk.md#how-the-two-sides-relate), and
shows, per site and node, the files the node agents would write (secrets masked) and the
relation table filled with the site's values.

With --current it also reads the desired state each node has now from NATS (the NATS
flags as for rollout) and shows what would change and at which revision. Secrets sealed
with rollout --seal can only be compared when --seal names the same credentials dir;
without it, plan compares every other field.

Nothing is published and nothing is written: plan is always safe to run.

When the file is invalid, plan prints every problem on stderr, one per line, as
FILE:LINE: PATH: MESSAGE (e.g. fleet.yaml:14: sites[bsas-1].dids[2].number: ...),
renders nothing and exits with status 2.

Secrets are referenced, not written, in the fleet file: env:NAME reads an environment
variable, file:PATH a file relative to the fleet file. Well-known secrets (the manual's
"omnileads" and "issabelOML", admin, 1234, ...) and secrets under 12 characters are
refused unless --accept-weak-secrets is given, which is for labs.`,
		Example: `  # Check the example fleet and show everything it would write
  pbxfleet plan examples/fleet.yaml

  # One or two sites only
  pbxfleet plan examples/fleet.yaml --site bsas-1 --site rosario-docker

  # What would change against the fleet now (sealed secrets compared too)
  pbxfleet plan fleet.yaml --current --nats-url nats://hub:4222 --nkey creds/operator.nk --seal creds

  # The same plan as a JSON document (secrets masked), e.g. for review in CI
  pbxfleet plan examples/fleet.yaml --output json | jq '.sites[].relations'

  # A lab with the manual's own secret
  PBXFLEET_SECRET=issabelOML pbxfleet plan lab.yaml --accept-weak-secrets`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.sealDir != "" && !c.withCurrent {
				return opcli.Invalid(errors.New("plan: --seal compares with the current state: add --current"))
			}
			if c.withCurrent {
				c.current = c.readCurrent
			}
			return c.run(cmd.Context(), args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&c.withCurrent, "current", false, "compare with the desired state in NATS now (the NATS flags below)")
	f.StringVar(&c.sealDir, "seal", "", "with --current: credentials dir (pbxfleet creds) whose orchestrator key opens sealed secrets to compare them")
	c.nats.Register(f)
	f.StringArrayVar(&c.sites, "site", nil, "plan only this site (repeatable); the whole file is still validated")
	f.StringVarP(&c.output, "output", "o", outputText, "output format: text or json")
	f.BoolVar(&c.acceptWeakSecrets, "accept-weak-secrets", false, "accept well-known and short secrets, with a warning (labs only)")
	return cmd
}

// readCurrent reads every node's desired state from NATS and, with --seal,
// opens the secrets the orchestrator key sealed.
func (c *planCommand) readCurrent(ctx context.Context) (map[string]events.Desired, error) {
	nc, js, err := c.nats.Connect(ctx, "pbxfleet plan")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	current, err := opcli.CurrentDesired(ctx, js)
	if err != nil {
		return nil, err
	}
	if c.sealDir != "" {
		if err := opcli.OpenCurrent(current, c.sealDir); err != nil {
			return nil, err
		}
	}
	return current, nil
}

// run plans the fleet file at path and prints the plan to out; problems with
// the input go to errOut and make an exit status of 2.
func (c *planCommand) run(ctx context.Context, path string, out, errOut io.Writer) error {
	if c.output != outputText && c.output != outputJSON {
		return opcli.Invalid(fmt.Errorf("plan: --output %q: want %s or %s", c.output, outputText, outputJSON))
	}
	spec, err := loadSpec(path, c.sites, c.acceptWeakSecrets, errOut)
	if err != nil {
		return err
	}
	current, err := c.current(ctx)
	if err != nil {
		return fmt.Errorf("plan %s: read the current state: %w", path, err)
	}
	plan, err := planner.BuildPlan(spec, current)
	if err != nil {
		return fmt.Errorf("plan %s: %w", path, err)
	}
	report := plan.Report()
	if c.output == outputJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		// Dialplans hold "=>" and "->": keep them readable.
		enc.SetEscapeHTML(false)
		if err := enc.Encode(report); err != nil {
			return fmt.Errorf("plan %s: write json: %w", path, err)
		}
		return nil
	}
	return writePlanText(out, path, report)
}

// loadSpec loads and validates a fleet file and keeps only sites (all when
// empty). Problems go to errOut, one per line, and the error has exit status 2.
func loadSpec(path string, sites []string, acceptWeak bool, errOut io.Writer) (*planner.Spec, error) {
	spec, err := planner.Load(path, planner.Options{AcceptWeakSecrets: acceptWeak})
	if err != nil {
		var ve *planner.ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				fmt.Fprintln(errOut, opcli.ProblemLine(path, p))
			}
			return nil, opcli.Invalid(fmt.Errorf("%s: %d %s, nothing planned", path, len(ve.Problems), plural(len(ve.Problems), "problem")))
		}
		return nil, opcli.Invalid(err)
	}
	spec, err = spec.Select(sites...)
	if err != nil {
		return nil, opcli.Invalid(fmt.Errorf("%s: %w", path, err))
	}
	return spec, nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// writePlanText prints a report for people: a summary, then per site the
// relation table and per node the change and the files.
func writePlanText(w io.Writer, path string, r planner.Report) error {
	ew := opcli.NewErrWriter(w)
	ew.Printf("Plan %s for %s\n", shortHash(r.PlanHash), path)
	ew.Printf("%d %s, %d nodes: %d new, %d changed, %d unchanged. Nothing is published by plan.\n",
		r.Summary.Sites, plural(r.Summary.Sites, "site"), r.Summary.Nodes, r.Summary.New, r.Summary.Changed, r.Summary.Unchanged)

	for _, s := range r.Sites {
		ew.Printf("\n== site %s (%s) ==\n", s.Site, s.Scenario)
		runtime := "OMniLeads " + s.OML.Profile + ", deployment " + s.OML.Deployment
		if s.OML.Container != "" {
			runtime += " (container " + s.OML.Container + ")"
		}
		ew.Printf("secret from %s; %s\n\n", s.SecretSource, runtime)
		writeOMLObjects(ew, s.OMLObjects)
		if err := writeRelations(ew, s.Relations); err != nil {
			return err
		}
		for _, n := range s.Nodes {
			writeNode(ew, n)
		}
	}
	if len(r.Removed) > 0 {
		ew.Printf("\nNodes with a desired state but no site in the file (left as they are): %s\n", strings.Join(r.Removed, ", "))
	}
	if len(r.Warnings) > 0 {
		ew.Printf("\n%d %s:\n", len(r.Warnings), plural(len(r.Warnings), "warning"))
		for _, p := range r.Warnings {
			ew.Printf("  %s\n", opcli.ProblemLine(path, p))
		}
	}
	return ew.Err()
}

// writeOMLObjects prints the OMniLeads objects of a site (docs/omnileads.md).
func writeOMLObjects(ew *opcli.ErrWriter, o planner.OMLObjectsReport) {
	ew.Printf("OMniLeads objects (agents-node with omnileads.deployment other than custom-file):\n")
	ew.Printf("  SIP trunk %s (%s), text config = the wizard block below without its [%s] line\n", o.Trunk.Name, o.Trunk.Technology, o.Trunk.Name)
	r := o.OutboundRoute
	pats := make([]string, 0, len(r.Patterns))
	for _, p := range r.Patterns {
		pats = append(pats, omlobjects.ShowPattern(p))
	}
	ew.Printf("  outbound route %s -> trunk %s: patterns %s, ring time %d s, dial options %s\n", r.Name, o.Trunk.Name, strings.Join(pats, " "), r.RingTime, r.DialOptions)
	switch {
	case len(o.InboundRoutes) == 0:
		ew.Printf("  inbound routes: no DIDs\n\n")
	case r.InboundCampaign != "":
		ew.Printf("  inbound routes: %s (created to campaign %s where missing)\n\n", strings.Join(o.InboundRoutes, ", "), r.InboundCampaign)
	default:
		ew.Printf("  inbound routes: %s (checked: each must exist in OMniLeads)\n\n", strings.Join(o.InboundRoutes, ", "))
	}
}

func writeRelations(ew *opcli.ErrWriter, rows []planner.Relation) error {
	ew.Printf("How the two sides relate (docs/asterisk.md#how-the-two-sides-relate):\n")
	if ew.Err() != nil {
		return ew.Err()
	}
	// Auto-format would upper-case the header and split "OMniLeads" into words.
	table := tablewriter.NewTable(ew, tablewriter.WithHeaderAutoFormat(tw.Off))
	table.Header("relation", "Issabel (chan_sip)", "rule", "OMniLeads (pjsip wizard)", "holds")
	for _, rel := range rows {
		holds := "yes"
		if !rel.Holds {
			holds = "NO: " + rel.Why
		}
		if err := table.Append(rel.Name, rel.PBX, rel.Rule, rel.OML, holds); err != nil {
			return fmt.Errorf("relation table: %w", err)
		}
	}
	if err := table.Render(); err != nil {
		return fmt.Errorf("relation table: %w", err)
	}
	return ew.Err()
}

func writeNode(ew *opcli.ErrWriter, n planner.NodeReport) {
	switch n.Change {
	case planner.ChangeUnchanged:
		ew.Printf("\nnode %s: unchanged at revision %d (files not shown)\n", n.Node, n.Revision)
		return
	case planner.ChangeNew:
		ew.Printf("\nnode %s: new, revision %d\n", n.Node, n.Revision)
	default:
		ew.Printf("\nnode %s: changed, revision %d -> %d\n", n.Node, n.CurrentRevision, n.Revision)
		for _, c := range n.Changes {
			ew.Printf("  ~ %s\n", c)
		}
	}
	for _, inc := range n.Includes {
		ew.Printf("  %s gets the line: %s\n", inc.Parent, inc.Line)
	}
	for _, f := range n.Files {
		ew.Printf("  --- %s\n", f.Name)
		for _, line := range strings.Split(strings.TrimRight(f.Content, "\n"), "\n") {
			ew.Printf("  | %s\n", line)
		}
	}
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
