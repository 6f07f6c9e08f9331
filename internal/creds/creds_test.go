package creds_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/bus"
	"github.com/pbxfleet/pbxfleet/internal/creds"
	"github.com/pbxfleet/pbxfleet/internal/natsclient"
	"github.com/pbxfleet/pbxfleet/internal/seal"
)

func publicKeys(res *creds.Result) map[string]creds.Key {
	out := map[string]creds.Key{}
	for _, k := range res.Keys {
		out[k.Name] = k
	}
	return out
}

func TestGenerateWritesSeedsAndPublicKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "creds")
	res, err := creds.Generate(dir, []string{"bsas-1.pbx", "bsas-1.oml", "bsas-1.pbx"})
	require.NoError(t, err)

	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	seeds := []struct {
		file, prefix string
	}{
		{"bsas-1.pbx.nk", "SU"}, {"bsas-1.pbx.xk", "SX"},
		{"bsas-1.oml.nk", "SU"}, {"bsas-1.oml.xk", "SX"},
		{"orchestrator.nk", "SU"}, {"orchestrator.xk", "SX"},
		{"operator.nk", "SU"},
	}
	var seedTexts []string
	for _, s := range seeds {
		t.Run(s.file, func(t *testing.T) {
			path := filepath.Join(dir, s.file)
			st, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(string(b), s.prefix), "a %s... seed", s.prefix)
			seedTexts = append(seedTexts, strings.TrimSpace(string(b)))
		})
	}
	_, err = os.Stat(filepath.Join(dir, "operator.xk"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the operator seals nothing")

	// auth.json and nats-server.conf hold public keys only.
	for _, name := range []string{creds.AuthFile, creds.ServerConfFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		for _, seed := range seedTexts {
			assert.NotContains(t, string(b), seed, name)
		}
	}
	set, err := creds.Load(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{"bsas-1.oml", "bsas-1.pbx"}, set.NodeIDs())
	keys := publicKeys(res)
	assert.Len(t, keys, 4)
	assert.Equal(t, keys["bsas-1.pbx"].User, set.Nodes["bsas-1.pbx"].User)
	assert.Equal(t, keys["bsas-1.pbx"].Curve, set.CurveKey("bsas-1.pbx"))
	assert.Empty(t, set.CurveKey("nowhere.pbx"))
	assert.Equal(t, keys[creds.Orchestrator].User, set.Orchestrator.User)
	assert.Equal(t, keys[creds.Operator].User, set.Operator.User)
	for _, k := range res.Keys {
		assert.True(t, k.Created, k.Name)
	}

	// The node's seed file matches the user key the server will know.
	kp, err := nkeys.ParseDecoratedNKey(mustRead(t, filepath.Join(dir, "bsas-1.pbx.nk")))
	require.NoError(t, err)
	pub, err := kp.PublicKey()
	require.NoError(t, err)
	assert.Equal(t, set.Nodes["bsas-1.pbx"].User, pub)

	// A secret sealed by the orchestrator to CurveKey opens with the node's .xk.
	orch, err := seal.LoadKey(filepath.Join(dir, "orchestrator.xk"))
	require.NoError(t, err)
	sealed, by, err := seal.Seal(orch, set.CurveKey("bsas-1.pbx"), "trunk-secret-123")
	require.NoError(t, err)
	assert.Equal(t, set.Orchestrator.Curve, by)
	nodeKey, err := seal.LoadKey(filepath.Join(dir, "bsas-1.pbx.xk"))
	require.NoError(t, err)
	plain, err := seal.NewOpener(nodeKey).Open(sealed, by)
	require.NoError(t, err)
	assert.Equal(t, "trunk-secret-123", plain)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func TestGenerateAgainKeepsKeys(t *testing.T) {
	dir := t.TempDir()
	first, err := creds.Generate(dir, []string{"a.pbx", "a.oml", "gone.pbx"})
	require.NoError(t, err)
	seedBefore := mustRead(t, filepath.Join(dir, "a.pbx.nk"))
	require.NoError(t, os.Chmod(filepath.Join(dir, "a.pbx.nk"), 0o644))

	second, err := creds.Generate(dir, []string{"a.pbx", "a.oml", "b.pbx"})
	require.NoError(t, err)
	before, after := publicKeys(first), publicKeys(second)
	tests := []struct {
		name    string
		created bool
	}{
		{creds.Operator, false}, {creds.Orchestrator, false}, {"a.pbx", false}, {"a.oml", false}, {"b.pbx", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.created, after[tt.name].Created)
			if !tt.created {
				assert.Equal(t, before[tt.name].User, after[tt.name].User)
				assert.Equal(t, before[tt.name].Curve, after[tt.name].Curve)
			}
		})
	}
	assert.Equal(t, seedBefore, mustRead(t, filepath.Join(dir, "a.pbx.nk")))
	st, err := os.Stat(filepath.Join(dir, "a.pbx.nk"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "a kept seed is made private again")
	assert.Equal(t, []string{"gone.pbx"}, second.Dropped)
	set, err := creds.Load(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{"a.oml", "a.pbx", "b.pbx"}, set.NodeIDs())
	_, err = os.Stat(filepath.Join(dir, "gone.pbx.nk"))
	assert.NoError(t, err, "the dropped node's seed stays")
}

func TestGenerateRefuses(t *testing.T) {
	tests := []struct {
		name    string
		nodes   []string
		from    string   // a seed file of a.oml made elsewhere...
		to      []string // ...copied to these files first
		want    error
		wantMsg string
	}{
		{name: "bad node id", nodes: []string{"bsas-1.pbx", "BSAS.pbx", "x.sbc"}, want: events.ErrInvalidNode, wantMsg: `"x.sbc"`},
		{name: "a curve seed in a .nk file", nodes: []string{"a.pbx"}, from: "a.oml.xk", to: []string{"a.pbx.nk"},
			want: creds.ErrWrongKeyKind, wantMsg: "a.pbx.nk"},
		{name: "a user seed in a .xk file", nodes: []string{"a.pbx"}, from: "a.oml.nk", to: []string{"a.pbx.xk"},
			want: creds.ErrWrongKeyKind, wantMsg: "a.pbx.xk"},
		{name: "one seed for two nodes", nodes: []string{"a.pbx", "a.oml"}, from: "a.oml.nk", to: []string{"a.pbx.nk", "a.oml.nk"},
			want: creds.ErrInvalidSet, wantMsg: "the same key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var planted []byte
			if tt.from != "" {
				other := t.TempDir()
				_, err := creds.Generate(other, []string{"a.oml"})
				require.NoError(t, err)
				planted = mustRead(t, filepath.Join(other, tt.from))
				for _, to := range tt.to {
					require.NoError(t, os.WriteFile(filepath.Join(dir, to), planted, 0o600))
				}
			}
			_, err := creds.Generate(dir, tt.nodes)
			require.ErrorIs(t, err, tt.want)
			assert.ErrorContains(t, err, tt.wantMsg)
			for _, to := range tt.to {
				assert.Equal(t, planted, mustRead(t, filepath.Join(dir, to)), "an existing seed is never overwritten")
			}
			_, err = os.Stat(filepath.Join(dir, creds.AuthFile))
			assert.ErrorIs(t, err, os.ErrNotExist, "no auth.json on error")
		})
	}
}

func TestLoadRefusesMalformedSets(t *testing.T) {
	dir := t.TempDir()
	_, err := creds.Generate(dir, []string{"a.pbx"})
	require.NoError(t, err)
	good, err := creds.Load(dir)
	require.NoError(t, err)
	userKP, err := nkeys.CreateAccount()
	require.NoError(t, err)
	accountKey, err := userKP.PublicKey()
	require.NoError(t, err)

	tests := []struct {
		name    string
		edit    func(s *creds.Set)
		raw     string
		wantMsg string
	}{
		{name: "version", edit: func(s *creds.Set) { s.Version = 2 }, wantMsg: "version 2"},
		{name: "not a user key", edit: func(s *creds.Set) { s.Operator.User = accountKey }, wantMsg: "operator.user"},
		{name: "missing curve", edit: func(s *creds.Set) { n := s.Nodes["a.pbx"]; n.Curve = ""; s.Nodes["a.pbx"] = n }, wantMsg: "nodes[a.pbx].curve"},
		{name: "bad node id", edit: func(s *creds.Set) { s.Nodes["a.sbc"] = s.Nodes["a.pbx"]; delete(s.Nodes, "a.pbx") }, wantMsg: "nodes[a.sbc]"},
		{name: "shared user key", edit: func(s *creds.Set) { s.Orchestrator.User = s.Nodes["a.pbx"].User }, wantMsg: "the same key"},
		{name: "unknown field", raw: `{"version":1,"seeds":{}}`, wantMsg: "seeds"},
		{name: "not json", raw: `version: 1`, wantMsg: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			data := []byte(tt.raw)
			if tt.edit != nil {
				s := *good
				s.Nodes = map[string]creds.Identity{}
				for k, v := range good.Nodes {
					s.Nodes[k] = v
				}
				tt.edit(&s)
				var err error
				data, err = json.Marshal(s)
				require.NoError(t, err)
			}
			require.NoError(t, os.WriteFile(filepath.Join(d, creds.AuthFile), data, 0o644))
			_, err := creds.Load(d)
			require.ErrorIs(t, err, creds.ErrInvalidSet)
			assert.ErrorContains(t, err, tt.wantMsg)
		})
	}
	_, err = creds.Load(t.TempDir())
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestServerConfMatchesNkeyUsers parses nats-server.conf with the server's own
// config parser: it must give exactly the users and permissions the embedded
// server gets from ServerOptions.
func TestServerConfMatchesNkeyUsers(t *testing.T) {
	dir := t.TempDir()
	_, err := creds.Generate(dir, []string{"bsas-1.pbx", "bsas-1.oml", "rosario-docker.pbx"})
	require.NoError(t, err)
	set, err := creds.Load(dir)
	require.NoError(t, err)

	opts, err := server.ProcessConfigFile(filepath.Join(dir, creds.ServerConfFile))
	require.NoError(t, err)
	want := set.NkeyUsers()
	require.Len(t, opts.Nkeys, len(want))
	for i, u := range want {
		t.Run(u.Nkey, func(t *testing.T) {
			assert.Equal(t, u.Nkey, opts.Nkeys[i].Nkey)
			assert.Equal(t, u.Permissions, opts.Nkeys[i].Permissions)
		})
	}

	var hooked server.Options
	set.ServerOptions()(&hooked)
	assert.Equal(t, want, hooked.Nkeys)
}

// TestServerOptionsAuthorizeTheFleet runs an embedded server with the hook and
// connects with the generated seed files, as the agents and operators do.
func TestServerOptionsAuthorizeTheFleet(t *testing.T) {
	dir := t.TempDir()
	_, err := creds.Generate(dir, []string{"a.pbx", "b.pbx"})
	require.NoError(t, err)
	set, err := creds.Load(dir)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	emb, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: t.TempDir(), Port: -1, Options: set.ServerOptions()})
	require.NoError(t, err)
	defer emb.Shutdown()
	connect := func(t *testing.T, name string) jetstream.JetStream {
		t.Helper()
		cfg := natsclient.Config{URL: emb.ClientURL(), NKeySeedFile: filepath.Join(dir, name+creds.UserSeedExt)}
		if site, role, err := events.ParseNodeID(name); err == nil {
			cfg.InboxPrefix = natsclient.InboxPrefix(site, role)
		}
		nc, err := natsclient.Connect(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		return js
	}
	require.NoError(t, bus.Provision(ctx, connect(t, creds.Operator), bus.ProvisionConfig{}))
	desired, err := connect(t, creds.Orchestrator).KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	for _, id := range []string{"a.pbx", "b.pbx"} {
		_, err := desired.PutString(ctx, id, "for "+id)
		require.NoError(t, err)
	}

	kv, err := connect(t, "a.pbx").KeyValue(ctx, events.BucketDesired)
	require.NoError(t, err)
	e, err := kv.Get(ctx, "a.pbx")
	require.NoError(t, err)
	assert.Equal(t, "for a.pbx", string(e.Value()))
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	_, err = kv.Get(short, "b.pbx")
	require.Error(t, err, "a.pbx may not read b.pbx's desired state")

	_, err = natsclient.Connect(ctx, natsclient.Config{URL: emb.ClientURL()})
	require.ErrorContains(t, err, "Authorization Violation")
}
