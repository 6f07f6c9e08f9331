package opcli

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
	"github.com/pbxfleet/pbxfleet/internal/wait"
	"github.com/pbxfleet/pbxfleet/services/web"
	"github.com/spf13/pflag"
)

// WebFlags are the page's flags, shared by `serve --http` and `web`.
type WebFlags struct {
	Listen      string
	AllowRemote bool
	ReadOnly    bool
	TokenFile   string
}

// Register adds the flags to fs: the address flag listenName, the others
// named with prefix.
func (f *WebFlags) Register(fs *pflag.FlagSet, listenName, prefix, defListen, listenHelp string) {
	fs.StringVar(&f.Listen, listenName, defListen, listenHelp)
	fs.BoolVar(&f.AllowRemote, prefix+"allow-remote", false, "let the page listen on a non-loopback address (use with --auth or a token file, behind TLS)")
	fs.BoolVar(&f.ReadOnly, prefix+"read-only", false, "hide the rollout buttons; the page refuses every POST")
}

// StartWeb binds the page's address and runs the page (its feed and its HTTP
// server) until ctx ends; stop ends both and waits. It returns the page's URL.
func StartWeb(ctx context.Context, f WebFlags, token string, nc *nats.Conn, js jetstream.JetStream, log *slog.Logger) (url string, stop func(), err error) {
	ln, err := web.Listen(f.Listen, f.AllowRemote)
	if err != nil {
		return "", nil, Invalid(fmt.Errorf("web page: %w", err))
	}
	if f.AllowRemote && token == "" {
		log.Warn("the fleet page listens beyond loopback without a token: anyone who reaches it sees the fleet"+
			map[bool]string{true: "", false: " and can pause, abort or roll back rollouts"}[f.ReadOnly], "address", f.Listen)
	}
	srv := web.New(web.Config{NC: nc, JS: js, ReadOnly: f.ReadOnly, Token: token, Logger: log})
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
			if wait.Sleep(ctx, 2*time.Second) != nil {
				return
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

// PrintWebURL prints the page's address and how it is opened.
func PrintWebURL(w io.Writer, url string, f WebFlags, tokenFile string) {
	fmt.Fprintf(w, "fleet page: %s", url)
	if f.ReadOnly {
		fmt.Fprint(w, " (read-only)")
	}
	if tokenFile != "" {
		fmt.Fprintf(w, " (operator token in %s)", tokenFile)
	}
	fmt.Fprintln(w)
}
