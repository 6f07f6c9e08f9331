package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/services/bus"
)

// TestServeRejectsBadFlags: each bad flag exits 2 naming the flag, before any
// server starts or any store is created.
func TestServeRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no rollout kept", []string{"--keep-rollouts", "0"}, "--keep-rollouts 0: keep at least 1"},
		{"unknown log level", []string{"--log-level", "loud"}, "loud"},
		{"credentials dir missing", []string{"--auth", "/nonexistent/pbxfleet-creds"}, "--auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			args := append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, tt.args...)
			r := run(t, "", args...)
			assert.Equal(t, 2, exitCode(r.err), r.all())
			assert.Contains(t, r.all(), tt.want)
			_, err := os.Stat(data)
			assert.True(t, os.IsNotExist(err), "no store was created")
		})
	}
}

// TestServeRefusesAHeldDataDir: a second serve on the --data of a running one
// exits with an error naming the lock file and the holder's pid, and starts
// nothing; once the first stops, the store is free again.
func TestServeRefusesAHeldDataDir(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	first, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: data, Port: -1})
	require.NoError(t, err)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			first.Shutdown()
		}
	})

	r := run(t, "", "serve", "--data", data, "--listen", "127.0.0.1:0")
	require.Error(t, r.err)
	assert.NotEqual(t, 0, exitCode(r.err))
	assert.ErrorIs(t, r.err, bus.ErrDataDirLocked)
	assert.Contains(t, r.err.Error(), filepath.Join(data, bus.LockFile))
	assert.Contains(t, r.err.Error(), "held by pid "+strconv.Itoa(os.Getpid()))
	assert.NotContains(t, r.stdout, "control plane on", "no second control plane")

	first.Shutdown()
	stopped = true
	again, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: data, Port: -1})
	require.NoError(t, err, "free once the first stopped")
	again.Shutdown()
}
