package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pbxfleet/pbxfleet/internal/agentcmd"
	"github.com/pbxfleet/pbxfleet/services/web"
)

// webFlags are the page's flags, shared by `serve --http` and `web`.
type webFlags struct {
	listen      string
	allowRemote bool
	readOnly    bool
	tokenFile   string
}

func (f *webFlags) register(fs *pflag.FlagSet, listenName, prefix, defListen, listenHelp string) {
	fs.StringVar(&f.listen, listenName, defListen, listenHelp)
	fs.BoolVar(&f.allowRemote, prefix+"allow-remote", false, "let the page listen on a non-loopback address (use with --auth or a token file, behind TLS)")
	fs.BoolVar(&f.readOnly, prefix+"read-only", false, "hide the rollout buttons; the page refuses every POST")
}

// startWeb binds the page's address and runs the page (its feed and its HTTP
// server) until ctx ends; stop ends both and waits. It returns the page's URL.
func startWeb(ctx context.Context, f webFlags, token string, nc *nats.Conn, js jetstream.JetStream, log *slog.Logger) (url string, stop func(), err error) {
	ln, err := web.Listen(f.listen, f.allowRemote)
	if err != nil {
		return "", nil, &exitError{code: 2, err: fmt.Errorf("web page: %w", err)}
	}
	if f.allowRemote && token == "" {
		log.Warn("the fleet page listens beyond loopback without a token: anyone who reaches it sees the fleet"+
			map[bool]string{true: "", false: " and can pause, abort or roll back rollouts"}[f.readOnly], "address", f.listen)
	}
	srv := web.New(web.Config{NC: nc, JS: js, ReadOnly: f.readOnly, Token: token, Logger: log})
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		// The feed starts over when a watch ends (NATS gone for long, a
		// bucket recreated); the page keeps serving meanwhile.
		for {
			err := srv.Run(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("web page feed stopped; starting it again in 2s", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
		}
	})
	wg.Go(func() {
		if err := srv.Serve(ctx, ln); err != nil {
			log.Error("web page server stopped", "err", err)
		}
	})
	return web.URL(ln), func() { cancel(); wg.Wait() }, nil
}

func printWebURL(w io.Writer, url string, f webFlags, tokenFile string) {
	fmt.Fprintf(w, "fleet page: %s", url)
	if f.readOnly {
		fmt.Fprint(w, " (read-only)")
	}
	if tokenFile != "" {
		fmt.Fprintf(w, " (operator token in %s)", tokenFile)
	}
	fmt.Fprintln(w)
}

func newWebCommand() *cobra.Command {
	var (
		nf        natsFlags
		f         webFlags
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
				return &exitError{code: 2, err: err}
			}
			token := ""
			if f.tokenFile != "" {
				if token, err = web.LoadOrCreateToken(f.tokenFile); err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--token-file: %w", err)}
				}
			}
			ctx := cmd.Context()
			nc, js, err := nf.connect(ctx, "pbxfleet web")
			if err != nil {
				return err
			}
			defer nc.Close()
			url, stop, err := startWeb(ctx, f, token, nc, js, log)
			if err != nil {
				return err
			}
			defer stop()
			printWebURL(cmd.OutOrStdout(), url, f, f.tokenFile)
			<-ctx.Done()
			return nil
		},
	}
	nf.register(cmd.Flags())
	f.register(cmd.Flags(), "listen", "", "127.0.0.1:8080", "address of the page")
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "require the operator token in this file (created when missing)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&logFormat, "log-format", "auto", "text, json, or auto (JSON when stderr is not a terminal)")
	return cmd
}
