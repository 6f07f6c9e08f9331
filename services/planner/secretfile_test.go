package planner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/internal/creds"
)

// TestSecretFilesThatAreNotSecrets: a file: secret that is a key (an nkey or
// curve seed, wherever it lies), any file inside a credentials dir (what
// `pbxfleet creds` writes, also through a symbolic link), or not a regular file
// (a FIFO must not block plan, a directory, a device) is refused at the site's
// secret field, and the error never holds the key.
func TestSecretFilesThatAreNotSecrets(t *testing.T) {
	dir := t.TempDir()
	credsDir := filepath.Join(dir, "creds")
	_, err := creds.Generate(credsDir, []string{"s1.pbx", "s1.oml"})
	require.NoError(t, err)
	loose := filepath.Join(dir, "loose")
	require.NoError(t, os.MkdirAll(loose, 0o700))
	user, _ := nkeys.CreateUser()
	userSeed, _ := user.Seed()
	curve, _ := nkeys.CreateCurveKeys()
	curveSeed, _ := curve.Seed()
	require.NoError(t, os.WriteFile(filepath.Join(loose, "copied.nk"), append(userSeed, '\n'), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(loose, "copied.xk"), curveSeed, 0o600))
	require.NoError(t, os.Symlink(credsDir, filepath.Join(dir, "link")))
	require.NoError(t, os.WriteFile(filepath.Join(credsDir, "innocent.secret"), []byte("Zq8-Lw3.Vn7+Tk2=Rp5"), 0o600))
	fifo := filepath.Join(loose, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	operatorSeed, err := os.ReadFile(filepath.Join(credsDir, "operator.nk"))
	require.NoError(t, err)

	tests := []struct {
		name, ref, errSub string
	}{
		{"the operator's seed", "file:creds/operator.nk", "inside the credentials dir"},
		{"the orchestrator's sealing key", "file:creds/orchestrator.xk", "inside the credentials dir"},
		{"a node's seed, absolute", "file:" + filepath.Join(credsDir, "s1.pbx.nk"), "inside the credentials dir"},
		{"any file in the creds dir", "file:creds/innocent.secret", "inside the credentials dir"},
		{"through a symbolic link", "file:link/operator.nk", "inside the credentials dir"},
		{"a user seed copied elsewhere", "file:loose/copied.nk", "an nkey seed"},
		{"a curve seed copied elsewhere", "file:loose/copied.xk", "an nkey seed"},
		{"a FIFO", "file:loose/fifo", "not a regular file (a FIFO)"},
		{"a directory", "file:loose", "not a regular file (a directory)"},
		{"a device", "file:/dev/zero", "not a regular file (a device)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				opts := testOptions()
				opts.AcceptWeakSecrets = true // key material is refused all the same
				_, err := Parse([]byte(fleet("", lanSite("s1", "secret: '"+tt.ref+"'"))), dir, opts)
				done <- err
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			select {
			case err := <-done:
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.errSub)
				assert.Equal(t, []string{"sites[s1].secret"}, problemPaths(t, err))
				for _, key := range [][]byte{userSeed, curveSeed, operatorSeed} {
					assert.NotContains(t, err.Error(), strings.TrimSpace(string(key)))
				}
			case <-ctx.Done():
				t.Fatal("plan blocked on the secret file")
			}
		})
	}
}

// TestCredsDirNames: the planner recognises a credentials dir by the names
// internal/creds writes.
func TestCredsDirNames(t *testing.T) {
	assert.Equal(t, creds.AuthFile, credsAuthFile)
	assert.Equal(t, "operator.nk", creds.Operator+creds.UserSeedExt)
	assert.Equal(t, "orchestrator.xk", creds.Orchestrator+creds.CurveSeedExt)
}
