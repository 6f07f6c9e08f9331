// Package agentcmd is the command line shared by pbx-node and agents-node: the
// two mains only choose their side (node.PBXSide or node.OMLSide).
package agentcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/metrics"
	"github.com/pbxfleet/pbxfleet/internal/natsclient"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/internal/omlobjects"
)

// ExitCodes of the agents.
const (
	exitFailed = 1
	exitUsage  = 2
)

type options struct {
	configPath string
	once       bool
	logLevel   string
	logFormat  string
}

// Main runs the agent command line for side and exits with its status.
func Main(side node.Side, version string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Execute(ctx, side, version, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Execute runs the agent command line with args and returns the exit status.
func Execute(ctx context.Context, side node.Side, version string, args []string, stdout, stderr io.Writer) int {
	var code int
	cmd := newCommand(side, version, &code)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", side.Program, err)
		if code == 0 {
			code = exitFailed
		}
	}
	return code
}

func newCommand(side node.Side, version string, code *int) *cobra.Command {
	o := &options{}
	what := map[string]string{
		events.RolePBX: "the Issabel PBX (Asterisk with chan_sip)",
		events.RoleOML: "the OMniLeads host (Asterisk with pjsip, on the host or in its container)",
	}[side.Role]
	root := &cobra.Command{
		Use:     side.Program + " --config FILE",
		Short:   fmt.Sprintf("pbxfleet agent for %s", what),
		Version: version,
		Long: fmt.Sprintf(`%s runs on %s. It watches its own desired-state key in
NATS (pbxfleet_desired <site>.%s), renders the trunk into its managed files, writes them
atomically, reloads Asterisk, proves the trunk works (trunk object, forced qualify,
managed dialplan, a probe call to an unassigned number), and rolls back on failure.
agents-node with omnileads.deployment set (host-1x, docker-1x, podman-2x, compose-2x)
keeps the trunk and the outbound route as OMniLeads objects instead, through
OMniLeads' own management shell, and checks each DID's inbound route.
It publishes one result per revision, keeps its status fresh and answers the
check/status NATS services. Paths and commands come only from --config.`, side.Program, what, side.Role),
		Example: fmt.Sprintf(`  %[1]s --config /etc/pbxfleet/%[1]s.yaml          # run until stopped
  %[1]s --config /etc/pbxfleet/%[1]s.yaml --once   # apply the current desired state, verify, exit
  %[1]s check --config /etc/pbxfleet/%[1]s.yaml    # verify the applied trunk now`, side.Program),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, side, version, o, code)
		},
	}
	root.PersistentFlags().StringVarP(&o.configPath, "config", "c", "", "agent config file (YAML; every field in docs/agent-config.md)")
	root.PersistentFlags().StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	root.PersistentFlags().StringVar(&o.logFormat, "log-format", "auto", "text, json, or auto (JSON when stderr is not a terminal)")
	root.Flags().BoolVar(&o.once, "once", false, "apply the current desired state, verify, and exit 0 (converged or nothing new) or 1")
	root.AddCommand(newCheckCommand(side, version, o, code))
	return root
}

func loadConfig(o *options, code *int) (node.Config, error) {
	if o.configPath == "" {
		*code = exitUsage
		return node.Config{}, errors.New("--config is required")
	}
	cfg, err := node.LoadConfig(o.configPath)
	if err != nil {
		*code = exitUsage
		return node.Config{}, err
	}
	return cfg, nil
}

// NewLogger returns a slog logger writing to w: JSON when format is json, or
// auto and w is not a terminal; text otherwise.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	useJSON := format == "json"
	if format == "auto" {
		f, ok := w.(*os.File)
		useJSON = !ok || !term.IsTerminal(int(f.Fd()))
	} else if format != "json" && format != "text" {
		return nil, fmt.Errorf("--log-format %q: want text, json or auto", format)
	}
	if useJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

func run(cmd *cobra.Command, side node.Side, version string, o *options, code *int) error {
	cfg, err := loadConfig(o, code)
	if err != nil {
		return err
	}
	log, err := NewLogger(cmd.ErrOrStderr(), o.logLevel, o.logFormat)
	if err != nil {
		*code = exitUsage
		return err
	}
	ctx := cmd.Context()
	site, role, _ := events.ParseNodeID(cfg.Node) // validated by LoadConfig
	nc, err := natsclient.Connect(ctx, natsclient.Config{
		// Node credentials may read only this inbox prefix (internal/bus/auth.go).
		InboxPrefix: natsclient.InboxPrefix(site, role),
		URL:         cfg.NATS.URL, Name: side.Program + " " + cfg.Node,
		CredsFile: cfg.NATS.CredsFile, NKeySeedFile: cfg.NATS.NKeyFile,
		TLSCA: cfg.NATS.TLSCA, TLSCert: cfg.NATS.TLSCert, TLSKey: cfg.NATS.TLSKey,
		// A long-running agent may start before the hub is reachable.
		RetryOnFailedConnect: !o.once,
		Logger:               log,
	})
	if err != nil {
		return err
	}
	defer nc.Close()
	opts := []node.Option{node.WithLogger(log), node.WithVersion(version)}
	if cfg.OpenSecretKeyFile != "" {
		opener, err := node.LoadSecretOpener(cfg.OpenSecretKeyFile)
		if err != nil {
			*code = exitUsage
			return err
		}
		opts = append(opts, node.WithSecretOpener(opener))
	}
	if objOpt, err := objectsOption(cfg); err != nil {
		*code = exitUsage
		return err
	} else if objOpt != nil {
		opts = append(opts, objOpt)
	}
	// Metrics only for the long-running agent: --once exits before a scrape.
	var msrv *metrics.Server
	if cfg.MetricsListen != "" && !o.once {
		reg := metrics.NewRegistry()
		if msrv, err = metrics.Listen(cfg.MetricsListen, reg, log); err != nil {
			return fmt.Errorf("metrics_listen: %w", err)
		}
		opts = append(opts, node.WithMetrics(reg))
	}
	agent, err := node.New(cfg, side, nil, nc, opts...)
	if err != nil {
		*code = exitUsage
		return err
	}
	if !o.once {
		return runAgent(ctx, agent, msrv)
	}
	res, applied, err := agent.ApplyCurrent(ctx)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if !applied {
		fmt.Fprintf(out, "%s: nothing new to apply (revision %d is applied)\n", cfg.Node, agent.AppliedRevision())
		return nil
	}
	fmt.Fprintf(out, "%s: revision %d %s", cfg.Node, res.Revision, res.Outcome)
	if res.Reason != "" {
		fmt.Fprintf(out, ": %s", res.Reason)
	}
	fmt.Fprintln(out)
	if res.Outcome != events.OutcomeConverged {
		*code = exitFailed
		return fmt.Errorf("revision %d was not applied", res.Revision)
	}
	return nil
}

// runAgent runs the agent, and its metrics server when msrv is not nil, until
// ctx ends; the metrics server stops with the agent.
func runAgent(ctx context.Context, agent *node.Agent, msrv *metrics.Server) error {
	if msrv == nil {
		return agent.Run(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	merr := make(chan error, 1)
	go func() { merr <- msrv.Run(ctx) }()
	err := agent.Run(ctx)
	cancel()
	return errors.Join(err, <-merr)
}

func newCheckCommand(side node.Side, version string, o *options, code *int) *cobra.Command {
	var (
		noProbe bool
		output  string
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "check",
		Short: "Verify the applied trunk now, without changing anything",
		Long: `check runs the agent's verification against the revision this host has applied:
the trunk object exists, a forced qualify answers, the managed dialplan is loaded,
and a probe call to the unassigned probe number ends as "unallocated" (cause 1),
which proves the credentials in this direction without ringing anyone; in objects
mode also the OMniLeads trunk, outbound route and inbound routes.
It needs no NATS. Exit status 0 when every check passed, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(o, code)
			if err != nil {
				return err
			}
			log, err := NewLogger(cmd.ErrOrStderr(), o.logLevel, o.logFormat)
			if err != nil {
				*code = exitUsage
				return err
			}
			opts := []node.Option{node.WithLogger(log), node.WithVersion(version)}
			if objOpt, err := objectsOption(cfg); err != nil {
				*code = exitUsage
				return err
			} else if objOpt != nil {
				opts = append(opts, objOpt)
			}
			agent, err := node.New(cfg, side, nil, nil, opts...)
			if err != nil {
				*code = exitUsage
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			rep, err := agent.Check(ctx, !noProbe)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printReport(cmd.OutOrStdout(), rep)
			}
			if !rep.Passed {
				*code = exitFailed
				return errors.New("check failed")
			}
			return nil
		},
	}
	c.Flags().BoolVar(&noProbe, "no-probe", false, "skip the probe call")
	c.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	c.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
	return c
}

// objectsOption returns the option that makes the agent keep OMniLeads objects
// (omnileads.deployment other than custom-file), or nil.
func objectsOption(cfg node.Config) (node.Option, error) {
	if !cfg.OMniLeads.Objects() {
		return nil, nil
	}
	objs, err := omlobjects.New(cfg.OMniLeads, nil)
	if err != nil {
		return nil, err
	}
	return node.WithObjects(objs), nil
}

func printReport(w io.Writer, rep node.CheckReport) {
	verdict := "FAILED"
	if rep.Passed {
		verdict = "OK"
	}
	fmt.Fprintf(w, "%s revision %d: %s\n", rep.Node, rep.Revision, verdict)
	if rep.Reason != "" {
		fmt.Fprintf(w, "  reason: %s\n", rep.Reason)
	}
	for _, c := range rep.Checks {
		mark := "pass"
		if !c.Passed {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %-4s %-13s %s\n", mark, c.Name, c.Detail)
	}
}
