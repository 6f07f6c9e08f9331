package main

import (
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
	"github.com/pbxfleet/pbxfleet/internal/creds"
	"github.com/pbxfleet/pbxfleet/services/planner"
)

// credsCommand holds the flag values of `pbxfleet creds`.
type credsCommand struct {
	fleet  string
	out    string
	output string
}

func newCredsCommand() *cobra.Command {
	c := &credsCommand{}
	cmd := &cobra.Command{
		Use:   "creds --fleet FLEET.yaml --out DIR",
		Short: "Make the NATS credentials of every node, the orchestrator and the operator",
		Long: `creds makes, in DIR, one NATS nkey user per node of the fleet, allowed exactly its own
desired key, its own result and status and its own service endpoints, plus a curve key per
node that its trunk secret is sealed to:

  <site>.<role>.nk   the node's nkey user seed     (copy to that node only; nats.nkey)
  <site>.<role>.xk   the node's curve seed         (copy to that node only; secret_key_file)
  orchestrator.nk    the orchestrator's nkey seed  (pbxfleet serve)
  orchestrator.xk    the curve seed that seals the trunk secrets
  operator.nk        full access, for people and the nats CLI (--nkey)
  auth.json          public keys only: pbxfleet serve --auth DIR loads it
  nats-server.conf   the same users and permissions for an external nats-server

Seeds are written with mode 0600 and never printed. Running creds again keeps every key
that exists (new nodes get new keys); a node that left the fleet keeps its seed files but
is no longer in auth.json, so the server stops letting it in.`,
		Example: `  pbxfleet creds --fleet examples/fleet.yaml --out /etc/pbxfleet/creds
  pbxfleet creds --fleet fleet.yaml --out creds --output json | jq '.keys[] | {name, user}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.run(cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.fleet, "fleet", "", "fleet file whose sites get credentials (required)")
	f.StringVar(&c.out, "out", "", "directory for the seeds, auth.json and nats-server.conf (required; created 0700)")
	f.StringVarP(&c.output, "output", "o", outputText, "output format: text or json")
	return cmd
}

// run makes the credentials and prints their public keys to out; problems with
// the input go to errOut and make an exit status of 2.
func (c *credsCommand) run(out, errOut io.Writer) error {
	var usage []string
	if c.fleet == "" {
		usage = append(usage, "--fleet is required")
	}
	if c.out == "" {
		usage = append(usage, "--out is required")
	}
	if c.output != outputText && c.output != outputJSON {
		usage = append(usage, fmt.Sprintf("--output %q: want %s or %s", c.output, outputText, outputJSON))
	}
	if len(usage) > 0 {
		return opcli.Invalid(fmt.Errorf("creds: %s", strings.Join(usage, "; ")))
	}
	// Only the site ids matter here: weak lab secrets are no reason to refuse.
	spec, err := planner.Load(c.fleet, planner.Options{AcceptWeakSecrets: true})
	if err != nil {
		var ve *planner.ValidationError
		if errors.As(err, &ve) {
			for _, p := range ve.Problems {
				fmt.Fprintln(errOut, opcli.ProblemLine(c.fleet, p))
			}
			return opcli.Invalid(fmt.Errorf("creds %s: %d %s, no credentials made", c.fleet, len(ve.Problems), plural(len(ve.Problems), "problem")))
		}
		return opcli.Invalid(fmt.Errorf("creds: %w", err))
	}
	nodes := make([]string, 0, 2*len(spec.Sites))
	for _, s := range spec.Sites {
		nodes = append(nodes, events.NodeID(s.ID, events.RolePBX), events.NodeID(s.ID, events.RoleOML))
	}
	res, err := creds.Generate(c.out, nodes)
	if err != nil {
		return fmt.Errorf("creds %s: %w", c.fleet, err)
	}
	if c.output == outputJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("creds: write json: %w", err)
		}
		return nil
	}
	return writeCredsText(out, res)
}

// writeCredsText prints the public keys as a table and says what was made.
func writeCredsText(w io.Writer, res *creds.Result) error {
	ew := opcli.NewErrWriter(w)
	created := 0
	for _, k := range res.Keys {
		if k.Created {
			created++
		}
	}
	ew.Printf("Credentials in %s: %d identities, %d new, %d kept. Seeds are not shown.\n\n",
		res.Dir, len(res.Keys), created, len(res.Keys)-created)
	if ew.Err() != nil {
		return ew.Err()
	}
	table := tablewriter.NewTable(ew, tablewriter.WithHeaderAutoFormat(tw.Off))
	table.Header("identity", "nkey user (public)", "curve (public)", "seed files", "")
	for _, k := range res.Keys {
		state := "kept"
		if k.Created {
			state = "new"
		}
		if err := table.Append(k.Name, k.User, k.Curve, strings.Join(k.Files, " "), state); err != nil {
			return fmt.Errorf("creds table: %w", err)
		}
	}
	if err := table.Render(); err != nil {
		return fmt.Errorf("creds table: %w", err)
	}
	if len(res.Dropped) > 0 {
		ew.Printf("\nNo longer in the fleet, so no longer allowed in (seed files left in place): %s\n", strings.Join(res.Dropped, ", "))
	}
	ew.Printf("\nWrote %s (for pbxfleet serve --auth %s) and %s (for an external nats-server).\n",
		creds.AuthFile, res.Dir, creds.ServerConfFile)
	ew.Printf("Copy <node>.nk and <node>.xk to that node only; keep operator.nk and orchestrator.* off the nodes.\n")
	return ew.Err()
}
