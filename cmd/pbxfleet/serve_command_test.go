package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
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
		{"page on a public address", []string{"--http", "0.0.0.0:8080"}, "not a loopback address"},
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
