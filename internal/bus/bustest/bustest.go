// Package bustest starts a real embedded NATS server with authorization on, for
// tests that check what each pbxfleet identity may do: one nkey user per
// identity (operator, orchestrator, nodes), each with its permissions from
// internal/bus, and connections that collect the violations the server reports.
package bustest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/bus"
	"github.com/pbxfleet/pbxfleet/internal/natsclient"
)

// AuthServer is a running embedded server with one user per identity.
type AuthServer struct {
	emb   *bus.Embedded
	seeds map[string]string // identity -> seed file
}

// StartAuthServer starts the server with users for the operator, the
// orchestrator and the nodes given, and provisions it as the operator.
func StartAuthServer(t *testing.T, nodes ...string) *AuthServer {
	t.Helper()
	s := StartBareAuthServer(t, nodes...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	op, _ := s.Connect(t, "operator")
	js, err := jetstream.New(op)
	require.NoError(t, err)
	require.NoError(t, bus.Provision(ctx, js, bus.ProvisionConfig{}))
	return s
}

// StartBareAuthServer is StartAuthServer without the provisioning: an empty store.
func StartBareAuthServer(t *testing.T, nodes ...string) *AuthServer {
	t.Helper()
	dir := t.TempDir()
	s := &AuthServer{seeds: map[string]string{}}
	var users []*server.NkeyUser
	add := func(name string, perms *server.Permissions) {
		pub, path := NewUserKey(t, dir, name)
		s.seeds[name] = path
		users = append(users, &server.NkeyUser{Nkey: pub, Permissions: perms})
	}
	add("operator", bus.OperatorPermissions())
	add("orchestrator", bus.OrchestratorPermissions())
	for _, id := range nodes {
		site, role, err := events.ParseNodeID(id)
		require.NoError(t, err)
		add(id, bus.NodePermissions(site, role))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	emb, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{
		DataDir: t.TempDir(), Port: -1,
		Options: func(o *server.Options) { o.Nkeys = users },
	})
	require.NoError(t, err)
	t.Cleanup(emb.Shutdown)
	s.emb = emb
	return s
}

// NewUserKey makes an nkey user: its public key, and its seed written to
// dir/<name>.nk (mode 0600) as `pbxfleet creds` would.
func NewUserKey(t *testing.T, dir, name string) (pub, seedFile string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	require.NoError(t, err)
	pub, err = kp.PublicKey()
	require.NoError(t, err)
	seed, err := kp.Seed()
	require.NoError(t, err)
	seedFile = filepath.Join(dir, name+".nk")
	require.NoError(t, os.WriteFile(seedFile, seed, 0o600))
	return pub, seedFile
}

// ClientURL is the URL clients dial.
func (s *AuthServer) ClientURL() string { return s.emb.ClientURL() }

// Connect dials as identity with natsclient.Connect; a node uses its own inbox
// prefix. The connection is closed when the test ends.
func (s *AuthServer) Connect(t *testing.T, identity string) (*nats.Conn, *Violations) {
	t.Helper()
	cfg := natsclient.Config{URL: s.emb.ClientURL(), Name: identity, NKeySeedFile: s.seeds[identity]}
	if site, role, err := events.ParseNodeID(identity); err == nil {
		cfg.InboxPrefix = natsclient.InboxPrefix(site, role)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := natsclient.Connect(ctx, cfg)
	require.NoError(t, err)
	v := &Violations{}
	nc.SetErrorHandler(v.handler)
	t.Cleanup(nc.Close)
	return nc, v
}

// Violations collects the permission violations the server reports to one
// connection.
type Violations struct {
	mu   sync.Mutex
	errs []error
}

func (v *Violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		v.mu.Lock()
		v.errs = append(v.errs, err)
		v.mu.Unlock()
	}
}

// All is every violation reported so far, as the server worded it.
func (v *Violations) All() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]string, len(v.errs))
	for i, err := range v.errs {
		out[i] = err.Error()
	}
	return out
}

// RequireOn waits until the server reported a violation on a subject that
// starts with subject.
func (v *Violations) RequireOn(t *testing.T, subject string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, e := range v.All() {
			if strings.Contains(e, `"`+subject) {
				return true
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond, "no permission violation on %q; got %q", subject, v.All())
}
