package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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

// rolloutCmd is `pbxfleet rollout`: one noun, one method per verb, as natscli
// groups its commands (start, watch, status, pause, resume, abort, rollback).
type rolloutCmd struct {
	start  rolloutFlags
	nats   opcli.NATSFlags
	output string
}

func newRolloutCommand() *cobra.Command {
	c := &rolloutCmd{}
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Roll the fleet file out site by site, and follow or steer a rollout",
		Long: `rollout starts a rollout of a fleet file (rollout start) and follows or steers one
(watch, status, pause, resume, abort, rollback), through the control plane's
orchestrator service (pbxfleet serve) — the same service the nats CLI and the fleet
page use. "pbxfleet rollout FLEET.yaml" still starts one (as rollout start does), with
a notice.`,
		Example: `  pbxfleet rollout start examples/fleet.yaml
  pbxfleet rollout status
  pbxfleet rollout pause
  pbxfleet rollout watch 20261204-061241-c0224a`,
		Args: cobra.MaximumNArgs(1),
		// The spelling of the previous release: rollout FLEET.yaml.
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "notice: `pbxfleet rollout FLEET.yaml` is now `pbxfleet rollout start FLEET.yaml`")
			return runRollout(cmd, &c.start, args[0])
		},
	}
	c.start.register(cmd.Flags())
	// Only for the old spelling; rollout start shows them.
	cmd.Flags().VisitAll(func(f *pflag.Flag) { f.Hidden = true })
	start := &cobra.Command{
		Use:   "start FLEET.yaml",
		Short: "Roll the fleet file out site by site: canary, waves, failure budget, automatic rollback",
		Long:  "start " + strings.TrimPrefix(startLong, "rollout "),
		Example: `  pbxfleet rollout start examples/fleet.yaml
  pbxfleet rollout start fleet.yaml --canary-site bsas-1 --wave-size 10 --parallelism 5 --bake 2m
  pbxfleet rollout start fleet.yaml --max-failed 2 --max-unreachable 5 --on-failure pause --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runRollout(cmd, &c.start, args[0]) },
	}
	c.start.register(start.Flags())
	cmd.AddCommand(start)
	for _, v := range c.verbs() {
		cmd.AddCommand(c.verbCommand(v, false))
	}
	return cmd
}

// startLong is the help of rollout start.
const startLong = `rollout validates the fleet file (like plan), then asks the control plane's
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
it paused, 2 on invalid input. Ctrl-C stops watching, not the rollout.`

func (f *rolloutFlags) register(fs *pflag.FlagSet) {
	f.nats.Register(fs)
	f.strategy.register(fs)
	fs.StringArrayVar(&f.sites, "site", nil, "roll out only this site (repeatable)")
	fs.StringVarP(&f.output, "output", "o", outputText, "text or json (the final rollout record)")
	fs.BoolVar(&f.weak, "accept-weak-secrets", false, "accept well-known and short secrets (labs only)")
	fs.BoolVar(&f.detach, "detach", false, "start the rollout and print its id without watching")
	fs.StringVar(&f.sealWith, "seal", "", "credentials dir (pbxfleet creds): seal each trunk secret to its node's key")
	fs.BoolVar(&f.noProgress, "no-progress", false, "plain lines even on a terminal")
}

func runRollout(cmd *cobra.Command, f *rolloutFlags, path string) error {
	if f.output != outputText && f.output != outputJSON {
		return opcli.Invalid(fmt.Errorf("--output %q: want text or json", f.output))
	}
	spec, err := loadSpec(path, f.sites, f.weak, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	strategy := f.strategy.strategy()
	if err := strategy.Validate(); err != nil {
		return opcli.Invalid(err)
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
			return opcli.Invalid(err)
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
		fmt.Fprintf(out, "watch it with: pbxfleet rollout watch %s\n", started.ID)
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
		return &opcli.ExitError{Code: opcli.ExitPaused, Err: fmt.Errorf("rollout %s paused: %s", r.ID, r.Message)}
	}
	return &opcli.ExitError{Code: opcli.ExitFailed, Err: fmt.Errorf("rollout %s %s: %s", r.ID, r.Phase, r.Message)}
}

// rolloutVerb is one of rollout's steering verbs.
type rolloutVerb struct {
	name, short, long string
	run               func(c *rolloutCmd, cmd *cobra.Command, id string) error
}

func (c *rolloutCmd) verbs() []rolloutVerb {
	return []rolloutVerb{
		{"watch", "Follow a rollout until it ends (live progress, then the per-site table)",
			"watch follows a rollout started by anyone (pbxfleet rollout start, nats req pbxfleet.rollout.start, the fleet page).",
			(*rolloutCmd).watch},
		{events.RolloutStatus, "Show a rollout now: phase, waves, per-site table (no waiting)",
			"status prints the rollout's record as it is now and returns.",
			(*rolloutCmd).status},
		{events.RolloutPause, "Pause a rollout after the sites in flight report",
			"pause stops starting new sites; sites in flight finish and are counted.",
			(*rolloutCmd).pause},
		{events.RolloutResume, "Resume a paused rollout (or one whose driver died)",
			"resume continues from the persisted state; sites already put are not put again.",
			(*rolloutCmd).resume},
		{events.RolloutAbort, "Stop a rollout where it is, keeping what converged",
			"abort stops the rollout; sites that converged keep the new revision.",
			(*rolloutCmd).abort},
		{events.RolloutRollback, "Put the previous revision back on every node the rollout touched",
			"rollback re-publishes each touched node's previous intent as a new revision (nodes never apply older revisions) and waits for the results.",
			(*rolloutCmd).rollback},
	}
}

// verbCommand builds the command of v; legacy is the root spelling of the
// previous release (pbxfleet pause), kept hidden with a notice.
func (c *rolloutCmd) verbCommand(v rolloutVerb, legacy bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   v.name + " [ROLLOUT-ID]",
		Short: v.short,
		Long: v.long + "\n\nWithout an id it acts on the current rollout (the active one, else the last)." + opExitStatus(v.name) +
			"\n\nWith --output json, stdout holds only the rollout record as one JSON document; the progress lines go to stderr.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.output != outputText && c.output != outputJSON {
				return opcli.Invalid(fmt.Errorf("--output %q: want text or json", c.output))
			}
			if legacy {
				fmt.Fprintf(cmd.ErrOrStderr(), "notice: `pbxfleet %s` is now `pbxfleet rollout %s`\n", v.name, v.name)
			}
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			return v.run(c, cmd, id)
		},
	}
	if legacy {
		cmd.Hidden = true
	}
	c.nats.Register(cmd.Flags())
	cmd.Flags().StringVarP(&c.output, "output", "o", outputText, "text or json")
	return cmd
}

// session is one connection for one verb, with where its output goes.
type session struct {
	nc            *nats.Conn
	js            jetstream.JetStream
	out, progress io.Writer
}

func (c *rolloutCmd) connect(cmd *cobra.Command, name string) (*session, error) {
	nc, js, err := c.nats.Connect(cmd.Context(), "pbxfleet rollout "+name)
	if err != nil {
		return nil, err
	}
	s := &session{nc: nc, js: js, out: cmd.OutOrStdout(), progress: cmd.OutOrStdout()}
	if c.output == outputJSON {
		s.progress = cmd.ErrOrStderr() // stdout holds only the final document
	}
	return s, nil
}

// act asks the orchestrator service for endpoint on rollout id (the current
// one when id is empty).
func (s *session) act(ctx context.Context, endpoint, id string) (orchestrator.Rollout, error) {
	var r orchestrator.Rollout
	err := opcli.Request(ctx, s.nc, endpoint, orchestrator.IDRequest{ID: id, Current: id == ""}, &r)
	return r, err
}

// follow watches r to its end and finishes as rollout start does.
func (c *rolloutCmd) follow(ctx context.Context, s *session, r orchestrator.Rollout) error {
	final, err := opcli.Follow(ctx, orchestrator.New(s.js, s.nc), r.ID, s.progress, c.output == outputText)
	if err != nil {
		return err
	}
	return finish(s.out, final, c.output)
}

func (c *rolloutCmd) watch(cmd *cobra.Command, id string) error {
	s, err := c.connect(cmd, "watch")
	if err != nil {
		return err
	}
	defer s.nc.Close()
	r, err := s.act(cmd.Context(), events.RolloutStatus, id)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	return c.follow(cmd.Context(), s, r)
}

func (c *rolloutCmd) status(cmd *cobra.Command, id string) error {
	s, err := c.connect(cmd, "status")
	if err != nil {
		return err
	}
	defer s.nc.Close()
	r, err := s.act(cmd.Context(), events.RolloutStatus, id)
	if err != nil {
		return err
	}
	if c.output == outputJSON {
		return writeJSON(s.out, r)
	}
	opcli.PrintRolloutTable(s.out, r)
	return nil
}

func (c *rolloutCmd) pause(cmd *cobra.Command, id string) error {
	s, err := c.connect(cmd, "pause")
	if err != nil {
		return err
	}
	defer s.nc.Close()
	r, err := s.act(cmd.Context(), events.RolloutPause, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.progress, "rollout %s: %s\n", r.ID, r.Phase)
	// Pausing returns at once: sites in flight still report (rollout watch).
	if c.output == outputJSON {
		return writeJSON(s.out, r)
	}
	return nil
}

func (c *rolloutCmd) resume(cmd *cobra.Command, id string) error {
	return c.steer(cmd, events.RolloutResume, id)
}

func (c *rolloutCmd) abort(cmd *cobra.Command, id string) error {
	return c.steer(cmd, events.RolloutAbort, id)
}

func (c *rolloutCmd) rollback(cmd *cobra.Command, id string) error {
	return c.steer(cmd, events.RolloutRollback, id)
}

// steer sends a verb that changes the rollout's course and follows it to its
// end (resume, abort, rollback).
func (c *rolloutCmd) steer(cmd *cobra.Command, endpoint, id string) error {
	s, err := c.connect(cmd, endpoint)
	if err != nil {
		return err
	}
	defer s.nc.Close()
	r, err := s.act(cmd.Context(), endpoint, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.progress, "rollout %s: %s\n", r.ID, r.Phase)
	return c.follow(cmd.Context(), s, r)
}

// opExitStatus documents a verb's exit status.
func opExitStatus(verb string) string {
	switch verb {
	case events.RolloutPause:
		return "\n\nExit status: 0 once the rollout is paused (sites in flight still report), 1 on an error, 2 on bad input."
	case events.RolloutStatus:
		return "\n\nExit status: 0 when the record was read, 1 on an error, 2 on bad input."
	}
	return "\n\nExit status, when the rollout ends: 0 succeeded; 1 failed, aborted or rolled back (or an error);\n" +
		"3 paused; 2 bad input."
}

// rolloutOpCommands are the previous release's root spellings (pbxfleet
// watch, pause, resume, abort, rollback): hidden, each with a notice.
func rolloutOpCommands() []*cobra.Command {
	c := &rolloutCmd{}
	var out []*cobra.Command
	for _, v := range c.verbs() {
		if v.name == events.RolloutStatus {
			continue // never a root command: pbxfleet status is the fleet's
		}
		out = append(out, c.verbCommand(v, true))
	}
	return out
}
