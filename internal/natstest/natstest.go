// Package natstest starts a real NATS server with JetStream, in process, for
// tests: no mocks of NATS anywhere in pbxfleet's tests.
package natstest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/services/bus"
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
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	emb, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: dir, Host: "127.0.0.1", Port: port})
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
