package opcli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/pbxfleet/pbxfleet/internal/bus"
)

// ControlPlane is a running NATS (embedded or not) with the wire provisioned.
type ControlPlane struct {
	embedded *bus.Embedded
	// URL is where clients reach it.
	URL string
}

// Close shuts the embedded server down.
func (c *ControlPlane) Close() {
	if c.embedded != nil {
		c.embedded.Shutdown()
	}
}

// StartEmbedded starts an embedded server on listen ("host:port", port 0 = any).
func StartEmbedded(ctx context.Context, dataDir, listen string, log *slog.Logger, hooks ...func(*server.Options)) (*ControlPlane, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("--listen %q: bad port", listen)
	}
	if port == 0 {
		port = -1 // nats-server: -1 picks a free port
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	abs, _ := filepath.Abs(dataDir)
	emb, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: abs, Host: host, Port: port, Logger: log, Options: bus.JoinOptions(hooks...)})
	if err != nil {
		return nil, err
	}
	return &ControlPlane{embedded: emb, URL: emb.ClientURL()}, nil
}

// Semver returns v when it is x.y.z (the micro service needs one), else 0.0.0.
func Semver(v string) string {
	var a, b, c int
	if _, err := fmt.Sscanf(v, "%d.%d.%d", &a, &b, &c); err == nil {
		return fmt.Sprintf("%d.%d.%d", a, b, c)
	}
	return "0.0.0"
}

// Server returns the embedded server (nil when the control plane is an
// external NATS), for its statistics.
func (c *ControlPlane) Server() *server.Server {
	if c.embedded == nil {
		return nil
	}
	return c.embedded.Server()
}
