// Package bus connects pbxfleet to NATS: it runs an embedded NATS server with
// JetStream on a file store, or connects to an existing NATS (URL, credentials,
// TLS), and creates the buckets and streams of docs/design.md#the-wire idempotently.
package bus

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures an in-process NATS server. The zero value means
// "the defaults": a random loopback port and a JetStream store in a temp dir is
// NOT a default — DataDir must be set, so nothing is lost on restart by accident.
type EmbeddedConfig struct {
	// DataDir is the JetStream file store directory (required).
	DataDir string
	// Host is the client listen address; default 127.0.0.1.
	Host string
	// Port is the client port; 0 means 4222, -1 means a random free port.
	Port int
	// ServerName names the server in cluster and monitoring output; default "pbxfleet".
	ServerName string
	// Options, when set, is applied last to the server options so callers can add
	// authorization, TLS, clustering or leaf nodes.
	Options func(*server.Options)
	// Logger receives the server's notices; nil keeps the server quiet.
	Logger *slog.Logger
}

// MaxPayload is the embedded server's max message size: a stock nats-server's
// 1 MiB. Nothing pbxfleet writes needs more (events are at most 64 KiB, and a
// rollout's record is a header and a key per site), so the embedded server and
// an external one behave the same.
const MaxPayload = 1 << 20

// Embedded is a running in-process NATS server.
type Embedded struct {
	srv  *server.Server
	lock *dirLock
}

// StartEmbedded starts a NATS server with JetStream and waits until it accepts
// clients or ctx ends. It holds an exclusive flock on DataDir/.lock until
// Shutdown (see LockFile). It returns an error wrapping ErrDataDirLocked, naming
// the holder's pid, when another server holds DataDir, and ErrNotReady when
// the server does not come up.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (_ *Embedded, err error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("start embedded nats: %w", ErrNoDataDir)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	defer func() {
		if err != nil {
			lock.release()
		}
	}()
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		NoSigs:     true,
		MaxPayload: MaxPayload,
	}
	if opts.ServerName == "" {
		opts.ServerName = "pbxfleet"
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = 4222
	}
	if cfg.Options != nil {
		cfg.Options(opts)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded nats: %w", err)
	}
	if cfg.Logger != nil {
		srv.SetLoggerV2(&slogAdapter{log: cfg.Logger}, false, false, false)
	}
	go srv.Start()
	wait := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		return nil, fmt.Errorf("start embedded nats on %s:%d: %w", opts.Host, opts.Port, ErrNotReady)
	}
	return &Embedded{srv: srv, lock: lock}, nil
}

// ClientURL returns the nats:// URL clients use to reach the server.
func (e *Embedded) ClientURL() string {
	addr := e.srv.Addr()
	if tcp, ok := addr.(*net.TCPAddr); ok {
		scheme := "nats"
		return scheme + "://" + net.JoinHostPort(tcp.IP.String(), strconv.Itoa(tcp.Port))
	}
	return e.srv.ClientURL()
}

// Server returns the underlying server, for tests and monitoring.
func (e *Embedded) Server() *server.Server { return e.srv }

// Shutdown stops the server and waits until it has released its store and
// ports, then releases the store's lock.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	e.lock.release()
}

// slogAdapter routes nats-server logs to slog.
type slogAdapter struct{ log *slog.Logger }

func (a *slogAdapter) Noticef(format string, v ...any) { a.log.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Warnf(format string, v ...any)   { a.log.Warn(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Fatalf(format string, v ...any)  { a.log.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Errorf(format string, v ...any)  { a.log.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Debugf(format string, v ...any)  { a.log.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Tracef(format string, v ...any)  {}
