package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
	"github.com/pbxfleet/pbxfleet/internal/agentcmd"
	"github.com/pbxfleet/pbxfleet/services/web"
)

func newWebCommand() *cobra.Command {
	var (
		nf        opcli.NATSFlags
		f         opcli.WebFlags
		logLevel  string
		logFormat string
	)
	cmd := &cobra.Command{
		Use:   "web",
		Short: "Serve the fleet page for a control plane that runs elsewhere",
		Long: `web serves the fleet page (docs/web.md) against the NATS of a running control plane,
as ` + "`pbxfleet serve --http`" + ` does in the control plane itself: every site's nodes and
trunk, the current rollout live with its waves and failure budget, a site's evidence
and revision history, the last rollouts. The buttons (pause, resume, abort, rollback)
go through the orchestrator service, like the CLI's verbs; --read-only hides them.

The page listens on loopback unless --allow-remote. With --token-file the page asks
for the token in that file (created with a random one when missing). No secret is
ever sent to the browser: desired states stay on NATS, CLI lines that name a
secret show <hidden>.`,
		Example: `  pbxfleet web --nats-url nats://hub:4222 --creds ops.creds
  pbxfleet web --listen 127.0.0.1:8080 --read-only
  pbxfleet web --listen 0.0.0.0:8080 --allow-remote --token-file /etc/pbxfleet/web.token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := agentcmd.NewLogger(cmd.ErrOrStderr(), logLevel, logFormat)
			if err != nil {
				return opcli.Invalid(err)
			}
			token := ""
			if f.TokenFile != "" {
				if token, err = web.LoadOrCreateToken(f.TokenFile); err != nil {
					return opcli.Invalid(fmt.Errorf("--token-file: %w", err))
				}
			}
			ctx := cmd.Context()
			nc, js, err := nf.Connect(ctx, "pbxfleet web")
			if err != nil {
				return err
			}
			defer nc.Close()
			url, stop, err := opcli.StartWeb(ctx, f, token, nc, js, log)
			if err != nil {
				return err
			}
			defer stop()
			opcli.PrintWebURL(cmd.OutOrStdout(), url, f, f.TokenFile)
			<-ctx.Done()
			return nil
		},
	}
	nf.Register(cmd.Flags())
	f.Register(cmd.Flags(), "listen", "", "127.0.0.1:8080", "address of the page")
	cmd.Flags().StringVar(&f.TokenFile, "token-file", "", "require the operator token in this file (created when missing)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&logFormat, "log-format", "auto", "text, json, or auto (JSON when stderr is not a terminal)")
	return cmd
}
