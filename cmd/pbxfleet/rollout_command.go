package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
	"github.com/pbxfleet/pbxfleet/services/planner"
)

// strategyFlags are the rollout strategy knobs.
type strategyFlags struct {
	canary             int
	canarySites        []string
	waveSize           int
	wavePercent        int
	parallelism        int
	bake               time.Duration
	siteDeadline       time.Duration
	maxFailed          int
	maxUnreachable     int
	waveMaxFailed      int
	waveMaxUnreachable int
	onFailure          string
	onSiteFailure      string
}

func (s *strategyFlags) register(fs *pflag.FlagSet) {
	fs.IntVar(&s.canary, "canary", 1, "the first N sites form the canary wave")
	fs.StringSliceVar(&s.canarySites, "canary-site", nil, "name the canary sites instead (repeatable)")
	fs.IntVar(&s.waveSize, "wave-size", 0, "sites per wave after the canary")
	fs.IntVar(&s.wavePercent, "wave-percent", 50, "or: share of the remaining sites per wave (used when --wave-size is 0)")
	fs.IntVar(&s.parallelism, "parallelism", 0, "most sites in flight inside a wave (0: the whole wave)")
	fs.DurationVar(&s.bake, "bake", 0, "wait between a successful wave and the next")
	fs.DurationVar(&s.siteDeadline, "site-deadline", 2*time.Minute, "both nodes of a site must report by then, else it is unreachable")
	fs.IntVar(&s.maxFailed, "max-failed", 0, "failed sites the whole rollout tolerates")
	fs.IntVar(&s.maxUnreachable, "max-unreachable", 0, "unreachable sites the whole rollout tolerates")
	fs.IntVar(&s.waveMaxFailed, "wave-max-failed", orchestrator.NoLimit, "failed sites one wave tolerates (-1: no per-wave limit)")
	fs.IntVar(&s.waveMaxUnreachable, "wave-max-unreachable", orchestrator.NoLimit, "unreachable sites one wave tolerates (-1: no per-wave limit)")
	fs.StringVar(&s.onFailure, "on-failure", orchestrator.OnFailureRollback, "when the budget is spent: rollback or pause")
	fs.StringVar(&s.onSiteFailure, "on-site-failure", orchestrator.OnSiteFailureRestore,
		"a failed site: restore (its previous intent back as a new revision, proven by a probe) or keep (left as put)")
}

func (s *strategyFlags) strategy() orchestrator.Strategy {
	st := orchestrator.Strategy{
		Canary: s.canary, CanarySites: s.canarySites, WaveSize: s.waveSize, WavePercent: s.wavePercent,
		Parallelism: s.parallelism, Bake: s.bake, SiteDeadline: s.siteDeadline,
		MaxFailed: s.maxFailed, MaxUnreachable: s.maxUnreachable,
		WaveMaxFailed: s.waveMaxFailed, WaveMaxUnreachable: s.waveMaxUnreachable, OnFailure: s.onFailure,
		OnSiteFailure: s.onSiteFailure,
	}
	if len(st.CanarySites) > 0 {
		st.Canary = 0
	}
	if st.WaveSize > 0 {
		st.WavePercent = 0
	}
	return st
}

type rolloutFlags struct {
	nats       opcli.NATSFlags
	strategy   strategyFlags
	sites      []string
	output     string
	weak       bool
	detach     bool
	sealWith   string
	noProgress bool
}

func newRolloutCommand() *cobra.Command {
	f := &rolloutFlags{}
	cmd := &cobra.Command{
		Use:   "rollout FLEET.yaml",
		Short: "Roll the fleet file out site by site: canary, waves, failure budget, automatic rollback",
		Long: `rollout validates the fleet file (like plan), then asks the control plane's
orchestrator (pbxfleet serve) to roll it out: the canary sites first, then waves;
each site's two nodes get their desired state together; each applies, checks and
waits, and once both have applied the orchestrator orders each to place its one
probe call. The site is done when both agents report. A site counts as failed when
a node rolled back (its trunk did not verify) and as unreachable when a node did not
report within --site-deadline. A failed site gets its previous intent back as a new
revision, proven by a probe (--on-site-failure keep leaves it as put). When the
failure budget is spent the rollout rolls back every site it touched (or pauses,
with --on-failure pause). Sites already at the planned revision are skipped.

It shows live progress (a bar on a terminal, plain lines otherwise), ends with a
per-site table (trunk state and RTT, probe verdict, revision, duration) and exits
0 when the rollout succeeded, 1 when it failed, was rolled back or aborted, 3 when
it paused, 2 on invalid input. Ctrl-C stops watching, not the rollout.`,
		Example: `  pbxfleet rollout examples/fleet.yaml
  pbxfleet rollout fleet.yaml --canary-site bsas-1 --wave-size 10 --parallelism 5 --bake 2m
  pbxfleet rollout fleet.yaml --max-failed 2 --max-unreachable 5 --on-failure pause --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runRollout(cmd, f, args[0]) },
	}
	f.nats.Register(cmd.Flags())
	f.strategy.register(cmd.Flags())
	cmd.Flags().StringArrayVar(&f.sites, "site", nil, "roll out only this site (repeatable)")
	cmd.Flags().StringVarP(&f.output, "output", "o", outputText, "text or json (the final rollout record)")
	cmd.Flags().BoolVar(&f.weak, "accept-weak-secrets", false, "accept well-known and short secrets (labs only)")
	cmd.Flags().BoolVar(&f.detach, "detach", false, "start the rollout and print its id without watching")
	cmd.Flags().StringVar(&f.sealWith, "seal", "", "credentials dir (pbxfleet creds): seal each trunk secret to its node's key")
	cmd.Flags().BoolVar(&f.noProgress, "no-progress", false, "plain lines even on a terminal")
	return cmd
}

func runRollout(cmd *cobra.Command, f *rolloutFlags, path string) error {
	if f.output != outputText && f.output != outputJSON {
		return &opcli.ExitError{Code: 2, Err: fmt.Errorf("--output %q: want text or json", f.output)}
	}
	spec, err := loadSpec(path, f.sites, f.weak, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	strategy := f.strategy.strategy()
	if err := strategy.Validate(); err != nil {
		return &opcli.ExitError{Code: 2, Err: err}
	}
	ctx := cmd.Context()
	nc, js, err := f.nats.Connect(ctx, "pbxfleet rollout")
	if err != nil {
		return err
	}
	defer nc.Close()
	current, err := opcli.CurrentDesired(ctx, js)
	if err != nil {
		return err
	}
	plan, err := planner.BuildPlan(spec, current)
	if err != nil {
		return fmt.Errorf("plan %s: %w", path, err)
	}
	op := plan.RolloutPlan()
	op.AcceptWeakSecrets = f.weak // the orchestrator holds the same policy
	if f.sealWith != "" {
		if err := opcli.SealPlan(&op, f.sealWith, current); err != nil {
			return &opcli.ExitError{Code: 2, Err: err}
		}
	}
	var started orchestrator.StartResponse
	if err := opcli.Request(ctx, nc, events.RolloutStart, orchestrator.StartRequest{Plan: op, Strategy: strategy}, &started); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if f.output == outputText {
		fmt.Fprintf(out, "rollout %s started: %d sites, plan %s\n", started.ID, len(op.Targets), shortHash(op.Hash))
	}
	if f.detach {
		if f.output == outputJSON {
			return json.NewEncoder(out).Encode(started)
		}
		fmt.Fprintf(out, "watch it with: pbxfleet watch %s\n", started.ID)
		return nil
	}
	eng := orchestrator.New(js, nc)
	// With --output json, stdout holds only the final document: progress goes to stderr.
	progress := out
	if f.output == outputJSON {
		progress = cmd.ErrOrStderr()
	}
	final, err := opcli.Follow(ctx, eng, started.ID, progress, f.output == outputText && !f.noProgress)
	if err != nil {
		return err
	}
	return finish(out, final, f.output)
}

// finish prints the final table (or JSON) and turns the phase into an exit status.
func finish(out io.Writer, r orchestrator.Rollout, output string) error {
	if output == outputJSON {
		if err := writeJSON(out, r); err != nil {
			return err
		}
	} else {
		opcli.PrintRolloutTable(out, r)
	}
	switch r.Phase {
	case orchestrator.PhaseSucceeded:
		return nil
	case orchestrator.PhasePaused:
		return &opcli.ExitError{Code: 3, Err: fmt.Errorf("rollout %s paused: %s", r.ID, r.Message)}
	}
	return &opcli.ExitError{Code: 1, Err: fmt.Errorf("rollout %s %s: %s", r.ID, r.Phase, r.Message)}
}

// newRolloutOpCommand builds pause, resume, abort, rollback and watch.
func newRolloutOpCommand(verb, short, long string) *cobra.Command {
	var (
		nf     opcli.NATSFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   verb + " [ROLLOUT-ID]",
		Short: short,
		Long: long + "\n\nWithout an id it acts on the current rollout (the active one, else the last)." + opExitStatus(verb) +
			"\n\nWith --output json, stdout holds only the rollout record as one JSON document; the progress lines go to stderr.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != outputText && output != outputJSON {
				return &opcli.ExitError{Code: 2, Err: fmt.Errorf("--output %q: want text or json", output)}
			}
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			ctx := cmd.Context()
			nc, js, err := nf.Connect(ctx, "pbxfleet "+verb)
			if err != nil {
				return err
			}
			defer nc.Close()
			out, progress := cmd.OutOrStdout(), cmd.OutOrStdout()
			if output == outputJSON {
				progress = cmd.ErrOrStderr() // stdout holds only the final document
			}
			endpoint := verb
			if verb == "watch" {
				endpoint = events.RolloutStatus
			}
			var r orchestrator.Rollout
			if err := opcli.Request(ctx, nc, endpoint, orchestrator.IDRequest{ID: id, Current: id == ""}, &r); err != nil {
				if verb == "watch" {
					return fmt.Errorf("watch: %w", err) // request names the status endpoint
				}
				return err
			}
			if verb != "watch" {
				fmt.Fprintf(progress, "rollout %s: %s\n", r.ID, r.Phase)
			}
			if verb == events.RolloutPause {
				// Pausing returns at once: sites in flight still report (pbxfleet watch).
				if output == outputJSON {
					return writeJSON(out, r)
				}
				return nil
			}
			final, err := opcli.Follow(ctx, orchestrator.New(js, nc), r.ID, progress, output == outputText)
			if err != nil {
				return err
			}
			return finish(out, final, output)
		},
	}
	nf.Register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", outputText, "text or json")
	return cmd
}

// opExitStatus documents a verb's exit status.
func opExitStatus(verb string) string {
	if verb == events.RolloutPause {
		return "\n\nExit status: 0 once the rollout is paused (sites in flight still report), 1 on an error, 2 on bad input."
	}
	return "\n\nExit status, when the rollout ends: 0 succeeded; 1 failed, aborted or rolled back (or an error);\n" +
		"3 paused; 2 bad input."
}

func rolloutOpCommands() []*cobra.Command {
	return []*cobra.Command{
		newRolloutOpCommand("watch", "Follow a rollout until it ends (live progress, then the per-site table)",
			"watch follows a rollout started by anyone (pbxfleet rollout, nats req pbxfleet.rollout.start)."),
		newRolloutOpCommand(events.RolloutPause, "Pause a rollout after the sites in flight report",
			"pause stops starting new sites; sites in flight finish and are counted."),
		newRolloutOpCommand(events.RolloutResume, "Resume a paused rollout (or one whose driver died)",
			"resume continues from the persisted state; sites already put are not put again."),
		newRolloutOpCommand(events.RolloutAbort, "Stop a rollout where it is, keeping what converged",
			"abort stops the rollout; sites that converged keep the new revision."),
		newRolloutOpCommand(events.RolloutRollback, "Put the previous revision back on every node the rollout touched",
			"rollback re-publishes each touched node's previous intent as a new revision (nodes never apply older revisions) and waits for the results."),
	}
}
