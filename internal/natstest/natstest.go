// Package natstest starts a real NATS server with JetStream, in process, for
// tests: no mocks of NATS anywhere in pbxfleet's tests.
package natstest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/bus"
)

// Server is a running test server with a provisioned JetStream.
type Server struct {
	*bus.Embedded
	DataDir string
	URL     string
	Conn    *nats.Conn
	JS      jetstream.JetStream
}

// Start starts an embedded server on a random loopback port with its store in a
// temp dir, provisions pbxfleet's buckets and stream, and stops it when the test
// ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartIn(t, t.TempDir(), -1)
}

// StartIn is Start with a given store dir and port, so a test can restart a server
// on the same store and port to simulate a server restart.
func StartIn(t testing.TB, dir string, port int) *Server {
	t.Helper()
	return start(t, dir, port, nil)
}

// StartWith is Start with server options changed by opts, e.g. a stock
// server's 1 MiB max payload instead of the embedded default.
func StartWith(t testing.TB, opts func(*server.Options)) *Server {
	t.Helper()
	return start(t, t.TempDir(), -1, opts)
}

func start(t testing.TB, dir string, port int, opts func(*server.Options)) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	emb, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: dir, Host: "127.0.0.1", Port: port, Options: opts})
	require.NoError(t, err)
	s := &Server{Embedded: emb, DataDir: dir, URL: emb.ClientURL()}
	stopped := false
	t.Cleanup(func() {
		if s.Conn != nil {
			s.Conn.Close()
		}
		if !stopped {
			emb.Shutdown()
		}
	})
	nc, err := nats.Connect(s.URL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	require.NoError(t, err)
	s.Conn = nc
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s.JS = js
	require.NoError(t, bus.Provision(ctx, js, bus.ProvisionConfig{}))
	return s
}

// Port returns the server's client port.
func (s *Server) Port() int { return s.Server().Addr().(*net.TCPAddr).Port }

// CLI returns the path of the real `nats` binary (natscli). Outside CI the test
// skips when it is missing; in CI (.ci/run installs it) a missing binary fails.
func CLI(t testing.TB) string {
	t.Helper()
	if path, err := exec.LookPath("nats"); err == nil {
		return path
	}
	if gopath, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		cand := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "nats")
		if _, err := os.Stat(cand); err == nil {
			return cand
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("the nats CLI is not installed (.ci/run installs it)")
	}
	t.Skip("the nats CLI is not installed (go install github.com/nats-io/natscli/nats@v0.5.1)")
	return ""
}

// RunCLI runs the nats CLI against url with stdin and returns its combined
// output, failing the test when it exits non-zero. Output is logged, shortened.
func RunCLI(t testing.TB, bin, url string, stdin []byte, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--server", url, "--no-context"}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "nats %s: %s", strings.Join(args, " "), out)
	shown := string(out)
	if len(shown) > 600 {
		shown = shown[:600] + "..."
	}
	t.Logf("$ nats %s\n%s", strings.Join(args, " "), shown)
	return string(out)
}
