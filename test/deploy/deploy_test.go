// Package deploy checks the files operators install as they are shipped: the
// systemd units (with the real systemd-analyze), the agent configs and the
// examples of docs/agent-config.md (with the agents' own loader), and the NATS
// server configs (with the real nats-server parser).
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/node"
)

const root = "../.."

// TestSystemdUnitsVerify runs `systemd-analyze verify` on each unit, with
// ExecStart pointed at an executable that exists here (verify insists), and
// wants no complaint at all: an unknown or misspelt directive is only a
// warning to systemd, so any output fails the test.
func TestSystemdUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: the units are not verified on this machine")
	}
	self, err := os.Executable()
	require.NoError(t, err)
	units, err := filepath.Glob(filepath.Join(root, "deploy", "systemd", "*.service"))
	require.NoError(t, err)
	require.Len(t, units, 2)
	execStart := regexp.MustCompile(`(?m)^ExecStart=/usr/local/bin/([a-z-]+) --config /etc/pbxfleet/([a-z-]+)\.yaml$`)
	for _, unit := range units {
		name := strings.TrimSuffix(filepath.Base(unit), ".service")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(unit)
			require.NoError(t, err)
			m := execStart.FindSubmatch(b)
			require.NotNil(t, m, "ExecStart runs /usr/local/bin/<agent> --config /etc/pbxfleet/<agent>.yaml")
			assert.Equal(t, name, string(m[1]), "the unit runs its own agent")
			assert.Equal(t, name, string(m[2]), "with its own config (deploy/systemd/%s.yaml)", name)
			assert.FileExists(t, filepath.Join(root, "deploy", "systemd", name+".yaml"))
			assert.DirExists(t, filepath.Join(root, "cmd", string(m[1])), "a main package named like the binary")

			copyPath := filepath.Join(t.TempDir(), name+".service")
			patched := execStart.ReplaceAll(b, []byte("ExecStart="+self+" --config /etc/pbxfleet/$2.yaml"))
			require.NoError(t, os.WriteFile(copyPath, patched, 0o644))
			out, err := exec.CommandContext(t.Context(), analyze, "verify", copyPath).CombinedOutput()
			require.NoError(t, err, "systemd-analyze verify %s:\n%s", name, out)
			assert.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify %s complains", name)
		})
	}
}

// TestAgentConfigsLoad loads every shipped agent config, and every YAML
// example of docs/agent-config.md, with the loader the agents use (unknown
// keys are errors there).
func TestAgentConfigsLoad(t *testing.T) {
	var files []string
	for _, pattern := range []string{"deploy/systemd/*.yaml", "deploy/agents/*.yaml"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.GreaterOrEqual(t, len(files), 6)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "agent-config.md"))
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(doc, -1)
	require.NotEmpty(t, blocks, "docs/agent-config.md has YAML examples")
	dir := t.TempDir()
	for i, b := range blocks {
		path := filepath.Join(dir, "agent-config.md-example-"+strconv.Itoa(i+1)+".yaml")
		require.NoError(t, os.WriteFile(path, b[1], 0o600))
		files = append(files, path)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := node.LoadConfig(f)
			require.NoError(t, err)
			assert.NotEmpty(t, cfg.Node)
		})
	}
}

// TestNATSConfs parses the hub and leaf configs with nats-server's own parser
// and checks what the README relies on.
func TestNATSConfs(t *testing.T) {
	hub, err := server.ProcessConfigFile(filepath.Join(root, "deploy", "nats", "hub.conf"))
	require.NoError(t, err)
	assert.True(t, hub.JetStream)
	assert.Equal(t, "hub", hub.JetStreamDomain)
	assert.Zero(t, hub.MaxPayload, "the stock 1 MiB: nothing pbxfleet writes needs more (README)")
	assert.NotZero(t, hub.LeafNode.Port)

	leaf, err := server.ProcessConfigFile(filepath.Join(root, "deploy", "nats", "leaf.conf"))
	require.NoError(t, err)
	assert.False(t, leaf.JetStream, "leaves run no JetStream of their own")
	assert.Equal(t, map[string]string{"$G": "hub"}, leaf.JsAccDefaultDomain)
	require.Len(t, leaf.LeafNode.Remotes, 1)
}
