package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/labctl"
	"github.com/pbxfleet/pbxfleet/internal/node"
	"github.com/pbxfleet/pbxfleet/services/planner"
)

// startLabHost runs `pbxlab lab host` for role on address in the background
// and returns its control socket once it answers; the host stops at cleanup.
func startLabHost(t *testing.T, role, address string) string {
	t.Helper()
	dir := t.TempDir()
	c := &labHostCommand{
		role: role, address: address, configDir: filepath.Join(dir, "etc"), profile: "1.x",
		ctl: filepath.Join(dir, "run", "asterisk.ctl"), stock: true, logLevel: "warn",
	}
	ready := make(chan struct{})
	c.ready = func() { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.run(ctx, &bytes.Buffer{}) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		_, err := os.Stat(c.ctl)
		assert.True(t, errors.Is(err, os.ErrNotExist), "the socket is removed when the host stops")
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("lab host stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("lab host did not serve its CLI within 10s")
	}
	return c.ctl
}

func TestAsteriskShim(t *testing.T) {
	sock := startLabHost(t, "pbx", "127.0.240.2")
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderr     string
		stdoutNone bool
	}{
		{name: "rx", args: []string{"-s", sock, "-rx", "sip show peers"}, stdout: "0 sip peers [Monitored"},
		{name: "r and x apart", args: []string{"-r", "-s", sock, "-x", "core show version"}, stdout: "pbxfleet lab"},
		{name: "verbose and x glued", args: []string{"-rvvx", "dialplan show from-internal-custom", "-s" + sock}, stdout: "from-internal-custom"},
		{name: "unknown command exits 0", args: []string{"-s", sock, "-rx", "pjsip reload"}, stdout: "No such command 'pjsip reload'"},
		{name: "nothing listens", args: []string{"-s", sock + ".none", "-rx", "sip show peers"}, code: 1,
			stderr: "Unable to connect to remote asterisk (does " + sock + ".none exist?)", stdoutNone: true},
		{name: "default socket", args: []string{"-rx", "sip show peers"}, code: 1, stderr: "does " + labctl.DefaultSocket + " exist?", stdoutNone: true},
		{name: "no command", args: []string{"-r"}, code: 1, stderr: "no -x COMMAND", stdoutNone: true},
		{name: "x without value", args: []string{"-rx"}, code: 1, stderr: "option -x needs a value", stdoutNone: true},
		{name: "unsupported option", args: []string{"-rz", "x"}, code: 1, stderr: "unsupported option -z", stdoutNone: true},
		{name: "stray argument", args: []string{"-rx", "sip show peers", "extra"}, code: 1, stderr: `unexpected argument "extra"`, stdoutNone: true},
		{name: "version", args: []string{"-V"}, stdout: "pbxfleet lab (Asterisk 20.20.1 CLI format)"},
	}
	if _, err := os.Stat(labctl.DefaultSocket); err == nil {
		tests = tests[:5] // something serves the real default socket here
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := asteriskShim(context.Background(), tt.args, &out, &errOut)
			assert.Equal(t, tt.code, code, "stdout %q stderr %q", out.String(), errOut.String())
			assert.Contains(t, out.String(), tt.stdout)
			assert.Contains(t, errOut.String(), tt.stderr)
			if tt.stdoutNone {
				assert.Empty(t, out.String())
			}
		})
	}
}

func TestLabRxCommand(t *testing.T) {
	sock := startLabHost(t, "oml", "127.0.240.3")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{name: "words joined", args: []string{"rx", "--socket", sock, "pjsip", "show", "endpoints"}, stdout: "No objects found."},
		{name: "one quoted word", args: []string{"rx", "--socket", sock, "module reload res_pjsip.so"},
			stdout: "Module 'res_pjsip.so' reloaded successfully."},
		{name: "flag-like words are the command", args: []string{"rx", "--socket", sock, "core", "show", "help", "-x"},
			stdout: "No such command 'core show help -x'"},
		{name: "not running", args: []string{"rx", "--socket", sock + ".none", "core", "show", "version"}, code: 1,
			stderr: "Unable to connect to remote asterisk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newLabCommand()
			var out, errOut bytes.Buffer
			cmd.SetArgs(tt.args)
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			err := cmd.ExecuteContext(context.Background())
			assert.Equal(t, tt.code, result{Err: err}.Code())
			assert.Contains(t, out.String(), tt.stdout)
			assert.Contains(t, errOut.String(), tt.stderr)
		})
	}
}

func TestLabHostRejectsBadFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		c    labHostCommand
		want string
	}{
		{name: "role", c: labHostCommand{role: "ivr", address: "127.0.240.4"}, want: `--role "ivr"`},
		{name: "container address", c: labHostCommand{role: "pbx", address: "172.18.0.5"},
			want: "not an IPv4 loopback address: the lab binds only loopback"},
		{name: "not an address", c: labHostCommand{role: "pbx", address: "pbx.example.com"}, want: "not an IPv4 loopback address"},
		{name: "socket path too long", c: labHostCommand{role: "pbx", address: "127.0.240.4", ctl: "/" + strings.Repeat("x", 120)},
			want: "too long for a Unix socket"},
		{name: "log level", c: labHostCommand{role: "pbx", address: "127.0.240.4", logLevel: "loud"}, want: "--log-level"},
		{name: "profile", c: labHostCommand{role: "oml", address: "127.0.240.4", profile: "3.x", stock: true}, want: `profile "3.x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			c.configDir = filepath.Join(dir, tt.name)
			if c.ctl == "" {
				c.ctl = filepath.Join(dir, "ctl")
			}
			if c.logLevel == "" {
				c.logLevel = "info"
			}
			err := c.run(context.Background(), &bytes.Buffer{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestShimMainLeavesOtherNamesAlone(t *testing.T) {
	for _, argv0 := range []string{"pbxfleet", "/usr/bin/pbxfleet", "asterisk-ish", "./bin/pbxfleet.test"} {
		handled, _ := shimMain([]string{argv0, "lab", "rx"})
		assert.False(t, handled, argv0)
	}
	handled, _ := shimMain(nil)
	assert.False(t, handled)
}

func TestLabFleet(t *testing.T) {
	dir := t.TempDir()
	c := &labCommand{dir: dir, natsURL: "nats://127.0.0.1:14222", logLevel: "warn", self: "/opt/pbxlab"}
	ready := make(chan labFleet, 1)
	c.ready = func(lf labFleet) { ready <- lf }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- c.run(ctx, examplePath, &out, &bytes.Buffer{}) }()
	var lf labFleet
	select {
	case lf = <-ready:
	case err := <-done:
		t.Fatalf("lab stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("lab did not serve within 20s")
	}

	want := []struct {
		node, address, main string
	}{
		{"bsas-1.pbx", "127.1.1.2", "sip.conf"},
		{"bsas-1.oml", "127.1.1.3", "pjsip.conf"},
		{"cordoba-cloud.pbx", "127.1.2.2", "sip.conf"},
		{"cordoba-cloud.oml", "127.1.2.3", "pjsip.conf"},
		{"rosario-docker.pbx", "127.1.3.2", "sip.conf"},
		{"rosario-docker.oml", "127.1.3.2", "pjsip.conf"}, // docker: OML on the PBX host
	}
	require.Len(t, lf.Nodes, len(want))
	for i, w := range want {
		n := lf.Nodes[i]
		t.Run(w.node, func(t *testing.T) {
			assert.Equal(t, w.node, n.Node)
			assert.Equal(t, w.address, n.Address)
			assert.FileExists(t, filepath.Join(n.ConfigDir, w.main))
			assert.DirExists(t, n.StateDir)
			cfg, err := node.LoadConfig(n.AgentConfig)
			require.NoError(t, err)
			assert.Equal(t, w.node, cfg.Node)
			assert.Equal(t, "nats://127.0.0.1:14222", cfg.NATS.URL)
			assert.Equal(t, n.ConfigDir, cfg.ConfigDir)
			assert.Equal(t, n.StateDir, cfg.StateDir)
			assert.Equal(t, []string{"/opt/pbxlab", "lab", "rx", "--socket", n.Socket}, cfg.Command)
			got, code, err := labctl.Run(context.Background(), n.Socket, "core show version")
			require.NoError(t, err)
			assert.Equal(t, 0, code, got)
			assert.Contains(t, out.String(), n.AgentConfig, "the guide names every agent config")
		})
	}

	// The lab fleet file plans the same trunks with the lab addresses and secrets.
	orig, err := planner.Load(examplePath, planner.Options{})
	require.NoError(t, err)
	labSpec, err := planner.Load(lf.FleetFile, planner.Options{})
	require.NoError(t, err)
	require.Len(t, labSpec.Sites, len(orig.Sites))
	for i, s := range labSpec.Sites {
		assert.Equal(t, orig.Sites[i].ID, s.ID)
		assert.Equal(t, orig.Sites[i].Trunk.Secret, s.Trunk.Secret, s.ID)
		assert.Equal(t, orig.Sites[i].Trunk.DIDs, s.Trunk.DIDs, s.ID)
		assert.Equal(t, lf.Nodes[2*i].Address, s.Trunk.PBXAddress, s.ID)
		assert.Equal(t, lf.Nodes[2*i+1].Address, s.Trunk.OMLAddress, s.ID)
	}
	// The guide's commands are ones the operator can run: the control plane
	// and the rollout are pbxfleet's, the shell into a lab host pbxlab's.
	assert.Contains(t, out.String(), "\n  pbxfleet serve ")
	assert.Contains(t, out.String(), "\n  pbxfleet rollout start "+lf.FleetFile+" --nats-url nats://127.0.0.1:14222\n")
	assert.Contains(t, out.String(), "\n  /opt/pbxlab lab rx --socket ")
	assert.NotContains(t, out.String(), "/opt/pbxlab serve")

	cancel()
	require.NoError(t, <-done)

	// A second lab in the same dir keeps what the agents applied.
	sipConf := filepath.Join(lf.Nodes[0].ConfigDir, "sip.conf")
	require.NoError(t, os.WriteFile(sipConf, []byte("; applied\n"), 0o644))
	_, err = setupLabFleet(examplePath, dir, c.natsURL, c.self, planner.Options{})
	require.NoError(t, err)
	b, err := os.ReadFile(sipConf)
	require.NoError(t, err)
	assert.Equal(t, "; applied\n", string(b))
}

func TestLabFleetRejectsInvalidFleet(t *testing.T) {
	var errOut bytes.Buffer
	c := &labCommand{dir: t.TempDir(), logLevel: "info", self: "/opt/pbxlab"}
	err := c.run(context.Background(), "../../examples/nonexistent.yaml", &bytes.Buffer{}, &errOut)
	require.Error(t, err)
	assert.Equal(t, 2, result{Err: err}.Code())

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("version: 1\nsites:\n  - id: BAD SITE\n"), 0o644))
	err = c.run(context.Background(), bad, &bytes.Buffer{}, &errOut)
	require.Error(t, err)
	assert.Equal(t, 2, result{Err: err}.Code())
	assert.Contains(t, errOut.String(), "bad.yaml:3:", "problems are listed as FILE:LINE")
}

func TestRolloutLine(t *testing.T) {
	tests := []struct {
		weak bool
		url  string
		want string
	}{
		{false, "nats://127.0.0.1:4222", "pbxfleet rollout start f.yaml --nats-url nats://127.0.0.1:4222"},
		{true, "nats://127.0.0.1:4222", "pbxfleet rollout start f.yaml --nats-url nats://127.0.0.1:4222 --accept-weak-secrets"},
		{false, "nats://op:hunter2@127.0.0.1:4222", "pbxfleet rollout start f.yaml --nats-url nats://op:xxxxx@127.0.0.1:4222"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, rolloutLine("f.yaml", tt.url, tt.weak))
	}
}
