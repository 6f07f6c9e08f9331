package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/omlobjects"
)

// TestConfigOMniLeadsDeployment: the omnileads section of agents-node's config
// names the deployment; custom-file (or nothing) keeps the files-only mode; a
// PBX node cannot have one; an unknown kind is refused with the list.
func TestConfigOMniLeadsDeployment(t *testing.T) {
	load := func(body string) (Config, error) {
		p := filepath.Join(t.TempDir(), "agent.yaml")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return LoadConfig(p)
	}
	c, err := load("node: bsas-1.oml\n")
	require.NoError(t, err)
	assert.False(t, c.OMniLeads.Objects(), "files only by default")

	c, err = load("node: bsas-1.oml\nomnileads: {deployment: custom-file}\n")
	require.NoError(t, err)
	assert.False(t, c.OMniLeads.Objects())

	c, err = load("node: bsas-1.oml\nomnileads:\n  deployment: podman-2x\n  container: my-uwsgi\n  timeout: 30s\n")
	require.NoError(t, err)
	assert.True(t, c.OMniLeads.Objects())
	argv, err := c.OMniLeads.Command()
	require.NoError(t, err)
	assert.Equal(t, []string{"podman", "exec", "-i", "my-uwsgi", "python3", "/opt/omnileads/ominicontacto/manage.py", "shell"}, argv)

	_, err = load("node: bsas-1.pbx\nomnileads: {deployment: compose-2x}\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "only an OMniLeads node")

	_, err = load("node: bsas-1.oml\nomnileads: {deployment: k8s}\n")
	require.ErrorIs(t, err, omlobjects.ErrConfig)
}
