package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/cmd/internal/clitest"
	"github.com/pbxfleet/pbxfleet/internal/creds"
)

// runCreds executes `pbxfleet creds` in-process (main.go registers it; this runs
// the command on its own).
func runCreds(t *testing.T, args ...string) result {
	t.Helper()
	cmd := newCredsCommand()
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	return clitest.Run(cmd, "", args...)
}

func TestCredsForTheExampleFleet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "creds")
	r := runCreds(t, "--fleet", examplePath, "--out", dir)
	require.NoError(t, r.Err, r.All())
	assert.Contains(t, r.Stdout, "8 identities, 8 new, 0 kept")
	for _, id := range []string{"bsas-1.pbx", "bsas-1.oml", "rosario-docker.oml", "cordoba-cloud.pbx", "orchestrator", "operator"} {
		assert.Contains(t, r.Stdout, id)
	}
	set, err := creds.Load(dir)
	require.NoError(t, err)
	assert.Len(t, set.NodeIDs(), 6)
	assert.Contains(t, r.Stdout, set.Nodes["bsas-1.pbx"].User)

	// Never a seed on the terminal.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); ext != creds.UserSeedExt && ext != creds.CurveSeedExt {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		assert.NotContains(t, r.All(), strings.TrimSpace(string(b)), e.Name())
	}

	again := runCreds(t, "--fleet", examplePath, "--out", dir, "--output", "json")
	require.NoError(t, again.Err, again.All())
	var res creds.Result
	require.NoError(t, json.Unmarshal([]byte(again.Stdout), &res))
	require.Len(t, res.Keys, 8)
	for _, k := range res.Keys {
		assert.False(t, k.Created, "%s is kept", k.Name)
	}
	set2, err := creds.Load(dir)
	require.NoError(t, err)
	assert.Equal(t, set, set2)
}

func TestCredsRefusesBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "fleet.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("version: 1\nsites:\n  - id: Not_A_Site\n"), 0o644))
	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"no fleet", []string{"--out", t.TempDir()}, 2, "--fleet is required"},
		{"no out", []string{"--fleet", examplePath}, 2, "--out is required"},
		{"bad output", []string{"--fleet", examplePath, "--out", t.TempDir(), "-o", "yaml"}, 2, `--output "yaml"`},
		{"missing fleet file", []string{"--fleet", "nope.yaml", "--out", t.TempDir()}, 2, "nope.yaml"},
		{"invalid fleet", []string{"--fleet", bad, "--out", t.TempDir()}, 2, "no credentials made"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCreds(t, tt.args...)
			require.Error(t, r.Err)
			assert.Equal(t, tt.code, r.Code())
			assert.Contains(t, r.All(), tt.wantErr)
		})
	}
}
