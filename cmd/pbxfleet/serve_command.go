package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
	"github.com/pbxfleet/pbxfleet/internal/agentcmd"
	"github.com/pbxfleet/pbxfleet/internal/bus"
	"github.com/pbxfleet/pbxfleet/internal/creds"
	"github.com/pbxfleet/pbxfleet/internal/metrics"
	"github.com/pbxfleet/pbxfleet/internal/natsclient"
	"github.com/pbxfleet/pbxfleet/services/orchestrator"
	"github.com/pbxfleet/pbxfleet/services/web"
)

type serveFlags struct {
	nats      opcli.NATSFlags
	external  bool
	data      string
	listen    string
	replicas  int
	logLevel  string
	logFormat string
	authDir   string
	srvCert   string
	srvKey    string
	srvCA     string
	mtls      bool
	// metricsListen is the Prometheus endpoint's address; empty: off.
	metricsListen string
	// keepRollouts is how many rollouts keep their record and plan.
	keepRollouts int
	// repairInterval is how often the keeper looks for sites to repair.
	repairInterval time.Duration
	// web is the fleet page; web.listen empty: off.
	web opcli.WebFlags
}

func newServeCommand() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the control plane: NATS with JetStream (embedded) and the rollout orchestrator",
		Long: `serve runs pbxfleet's control plane until interrupted:

  - an embedded NATS server with JetStream on a file store (--data), listening on
    --listen, unless --nats-url names an existing NATS (a cluster, a hub with leaf nodes);
  - the buckets and stream of the wire (pbxfleet_desired, pbxfleet_status,
    pbxfleet_rollouts, PBXFLEET_RESULTS), created or updated idempotently;
  - the orchestrator as the NATS service pbxfleet-orchestrator, so rollouts can be
    started, watched, paused, resumed, aborted and rolled back from pbxfleet or the
    nats CLI (nats req pbxfleet.rollout.status '{"current":true}');
  - with --metrics-listen, Prometheus metrics at http://<address>/metrics: the
    current (or last) rollout's phase and sites by outcome, and the results received
    (pbxfleet_rollout_*, pbxfleet_results_received_total), refreshed every 5s;
  - with --http, the fleet page (docs/web.md) at http://<address>/: every site, the
    current rollout live, a site's evidence, the last rollouts, and the buttons pause,
    resume, abort and rollback (--http-read-only hides them). Loopback only unless
    --http-allow-remote; with --auth DIR the page asks for the operator token kept in
    DIR/web.token (created with a random token when missing).

A rollout whose driver died (this process was killed) is picked up where its
persisted state says when serve starts again. The --keep-rollouts most recently
written rollouts keep their record and plan (so they can be watched and rolled
back); older finished ones are deleted when a rollout starts.

Between rollouts it keeps the fleet level: a node that applies its desired state
after the rollout that put it ended (it was cut off, or restarted) gets its probe
order once its far side runs its own; and every --repair-interval it repairs the
sites whose nodes handled their desired revision but failed it for a reason other
than the trunk's credentials (the far side was down, Asterisk was not running),
once both nodes report and see each other again: a "repair" rollout re-applies
their desired intent. Repairs of one site are 15 minutes apart at least, doubling,
so a site that keeps failing adds at most one failed call per side to the far
side's log (and its fail2ban) per interval.`,
		Example: `  pbxfleet serve --data /var/lib/pbxfleet                 # embedded NATS on 127.0.0.1:4222
  pbxfleet serve --data ./data --listen 0.0.0.0:4222
  pbxfleet serve --data /var/lib/pbxfleet --metrics-listen 127.0.0.1:9310
  pbxfleet serve --data /var/lib/pbxfleet --http 127.0.0.1:8080     # the fleet page (docs/web.md)
  pbxfleet serve --nats-url nats://hub-1:4222,nats://hub-2:4222 --creds orchestrator.creds --replicas 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.external = cmd.Flags().Changed("nats-url") || os.Getenv("NATS_URL") != ""
			return runServe(cmd, f)
		},
	}
	f.nats.Register(cmd.Flags())
	cmd.Flags().StringVar(&f.data, "data", "pbxfleet-data", "JetStream store of the embedded server (kept across restarts)")
	cmd.Flags().StringVar(&f.listen, "listen", "127.0.0.1:4222", "client address of the embedded server")
	cmd.Flags().IntVar(&f.replicas, "replicas", 1, "JetStream replicas of the buckets and stream (3 on a cluster)")
	cmd.Flags().StringVar(&f.authDir, "auth", "", "credentials dir (pbxfleet creds): the embedded server admits only the fleet's nkeys, each node limited to its own subjects")
	cmd.Flags().StringVar(&f.srvCert, "server-tls-cert", "", "embedded server: TLS certificate")
	cmd.Flags().StringVar(&f.srvKey, "server-tls-key", "", "embedded server: TLS key")
	cmd.Flags().StringVar(&f.srvCA, "server-tls-ca", "", "embedded server: CA for client certificates (with --server-mtls)")
	cmd.Flags().BoolVar(&f.mtls, "server-mtls", false, "embedded server: require client certificates signed by --server-tls-ca")
	cmd.Flags().StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus metrics at http://ADDRESS/metrics (e.g. 127.0.0.1:9310); empty: off")
	cmd.Flags().IntVar(&f.keepRollouts, "keep-rollouts", orchestrator.DefaultKeepRollouts, "how many rollouts keep their record and plan (older finished ones are deleted)")
	cmd.Flags().DurationVar(&f.repairInterval, "repair-interval", orchestrator.DefaultRepairInterval,
		"how often to look for sites whose nodes do not run their desired state although they could (the far side came back); 0 turns repairs off")
	f.web.Register(cmd.Flags(), "http", "http-", "", "serve the fleet page at http://ADDRESS/ (e.g. 127.0.0.1:8080); empty: off")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&f.logFormat, "log-format", "auto", "text, json, or auto (JSON when stderr is not a terminal)")
	return cmd
}

func runServe(cmd *cobra.Command, f *serveFlags) error {
	log, err := agentcmd.NewLogger(cmd.ErrOrStderr(), f.logLevel, f.logFormat)
	if err != nil {
		return opcli.Invalid(err)
	}
	if f.repairInterval < 0 {
		return opcli.Invalid(fmt.Errorf("--repair-interval %s: must not be negative (0 turns repairs off)", f.repairInterval))
	}
	if f.keepRollouts < 1 {
		return opcli.Invalid(fmt.Errorf("--keep-rollouts %d: keep at least 1 (the last rollout is what a rollback needs)", f.keepRollouts))
	}
	if f.web.Listen != "" {
		if err := web.CheckAddress(f.web.Listen, f.web.AllowRemote); err != nil {
			return opcli.Invalid(fmt.Errorf("--http: %w", err))
		}
	}
	ctx := cmd.Context()
	cp := &opcli.ControlPlane{URL: f.nats.URL}
	var hooks []func(*server.Options)
	if f.authDir != "" {
		set, err := creds.Load(f.authDir)
		if err != nil {
			return opcli.Invalid(fmt.Errorf("--auth: %w", err))
		}
		hooks = append(hooks, set.ServerOptions())
		// The control plane itself connects as the orchestrator.
		f.nats.NKey = filepath.Join(f.authDir, "orchestrator.nk")
	}
	if f.srvCert != "" {
		hook, err := bus.ServerTLS(f.srvCert, f.srvKey, f.srvCA, f.mtls)
		if err != nil {
			return opcli.Invalid(err)
		}
		hooks = append(hooks, hook)
	}
	if !f.external {
		cp, err = opcli.StartEmbedded(ctx, f.data, f.listen, log, hooks...)
		if err != nil {
			return err
		}
		defer cp.Close()
		f.nats.URL = cp.URL
		log.Info("embedded NATS with JetStream", "url", cp.URL, "data", f.data)
	}
	nc, js, err := f.nats.Connect(ctx, "pbxfleet serve")
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := bus.WaitForJetStream(ctx, js); err != nil {
		return err
	}
	if err := provision(ctx, f, js, log); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "pbxfleet control plane on %s (orchestrator service %q). Ctrl-C to stop.\n", natsclient.RedactURLs(f.nats.URL), "pbxfleet-orchestrator")
	serving := make(chan struct{})
	eng := orchestrator.New(js, nc, orchestrator.WithLogger(log), orchestrator.WithVersion(opcli.Semver(version)),
		orchestrator.WithKeepRollouts(f.keepRollouts), orchestrator.WithRepairInterval(f.repairInterval),
		orchestrator.WithServing(func() { close(serving) }))
	served := make(chan error, 1)
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing() // an early return (the page could not start) ends the service too
	go func() { served <- eng.Serve(serveCtx) }()
	// The page comes up once the service answers: its buttons call it.
	select {
	case <-serving:
	case err := <-served:
		return err
	}
	if f.metricsListen != "" {
		stop, err := serveMetrics(ctx, f.metricsListen, eng, js, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	if f.web.Listen != "" {
		token, tokenFile := "", ""
		wnc, wjs := nc, js
		if f.authDir != "" {
			tokenFile = filepath.Join(f.authDir, "web.token")
			if token, err = web.LoadOrCreateToken(tokenFile); err != nil {
				return opcli.Invalid(fmt.Errorf("--auth: web token: %w", err))
			}
			// The page acts for the operator who opened it with the token: it
			// connects as the operator (the orchestrator's identity may not
			// call its own verbs).
			wf := f.nats
			wf.NKey, wf.Creds = filepath.Join(f.authDir, "operator.nk"), ""
			if wnc, wjs, err = wf.Connect(ctx, "pbxfleet serve web"); err != nil {
				return err
			}
			defer wnc.Close()
		}
		url, stop, err := opcli.StartWeb(ctx, f.web, token, wnc, wjs, log)
		if err != nil {
			return err
		}
		defer stop()
		opcli.PrintWebURL(cmd.OutOrStdout(), url, f.web, tokenFile)
	}
	if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// provision creates the wire's streams, or brings them to pbxfleet's shape.
// With --auth and the operator's seed in the credentials dir it does so with
// the operator's key, on a connection of its own closed at once: the
// orchestrator's key may create the four streams but never update one (so it
// cannot shrink the results or turn roll-ups on in the status bucket). Without
// that seed it provisions as the orchestrator, which suffices unless a shape
// changed.
func provision(ctx context.Context, f *serveFlags, js jetstream.JetStream, log *slog.Logger) error {
	cfg := bus.ProvisionConfig{Replicas: f.replicas}
	if f.authDir == "" {
		return bus.Provision(ctx, js, cfg)
	}
	opSeed := filepath.Join(f.authDir, creds.Operator+creds.UserSeedExt)
	if _, err := os.Stat(opSeed); err != nil {
		log.Info("provisioning as the orchestrator (no operator seed in the credentials dir)", "dir", f.authDir)
		return bus.Provision(ctx, js, cfg)
	}
	pf := f.nats
	pf.NKey, pf.Creds = opSeed, ""
	nc, ojs, err := pf.Connect(ctx, "pbxfleet serve (provisioning)")
	if err != nil {
		return err
	}
	defer nc.Close()
	return bus.Provision(ctx, ojs, cfg)
}

// serveMetrics starts the control plane's Prometheus endpoint on listen and the
// refresh of its metrics from eng and the results stream. stop ends both and
// waits for them. It returns an error when listen cannot be bound.
func serveMetrics(ctx context.Context, listen string, eng *orchestrator.Engine, js jetstream.JetStream, log *slog.Logger) (stop func(), err error) {
	reg := metrics.NewRegistry()
	cpm, err := orchestrator.NewMetrics(reg, eng, orchestrator.MetricsResults(js), orchestrator.MetricsLogger(log))
	if err != nil {
		return nil, err
	}
	srv, err := metrics.Listen(listen, reg, log)
	if err != nil {
		return nil, opcli.Invalid(fmt.Errorf("--metrics-listen: %w", err))
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = cpm.Run(ctx) })
	wg.Go(func() {
		if err := srv.Run(ctx); err != nil {
			log.Error("metrics endpoint", "err", err)
		}
	})
	return func() { cancel(); wg.Wait() }, nil
}
