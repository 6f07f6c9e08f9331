package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
	"github.com/pbxfleet/pbxfleet/internal/bus"
	"github.com/pbxfleet/pbxfleet/internal/natsclient"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
	"github.com/pbxfleet/pbxfleet/internal/syncbuf"
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
			assert.Equal(t, 2, opcli.ExitCode(r.Err), r.All())
			assert.Contains(t, r.All(), tt.want)
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
	require.Error(t, r.Err)
	assert.NotEqual(t, 0, opcli.ExitCode(r.Err))
	assert.ErrorIs(t, r.Err, bus.ErrDataDirLocked)
	assert.Contains(t, r.Err.Error(), filepath.Join(data, bus.LockFile))
	assert.Contains(t, r.Err.Error(), "held by pid "+strconv.Itoa(os.Getpid()))
	assert.NotContains(t, r.Stdout, "control plane on", "no second control plane")

	first.Shutdown()
	stopped = true
	again, err := bus.StartEmbedded(ctx, bus.EmbeddedConfig{DataDir: data, Port: -1})
	require.NoError(t, err, "free once the first stopped")
	again.Shutdown()
}

// TestServeBannerHidesThePassword: serve on an external NATS whose URL holds a
// password prints the URL without it.
func TestServeBannerHidesThePassword(t *testing.T) {
	srv := natstest.Start(t)
	url := strings.Replace(srv.URL, "nats://", "nats://op:Sup3r-S3cret@", 1)
	root := newRootCommand()
	var out, errOut syncbuf.Buffer
	root.SetArgs([]string{"serve", "--nats-url", url, "--log-level", "debug"})
	root.SetOut(&out)
	root.SetErr(&errOut)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "control plane on") }, 20*time.Second, 20*time.Millisecond, errOut.String())
	cancel()
	require.NoError(t, <-done)
	assert.Contains(t, out.String(), "nats://op:xxxxx@127.0.0.1:")
	assert.NotContains(t, out.String()+errOut.String(), "Sup3r-S3cret")
}

// TestNATSURLsThatAreNotNATS: a --nats-url that nats.go would not dial as
// written exits 2 naming it (without its password), instead of connecting to
// 127.0.0.1:4222.
func TestNATSURLsThatAreNotNATS(t *testing.T) {
	for _, url := range []string{"http://127.0.0.1:4222", "file:///etc/passwd", "nats://127.0.0.1:4222,,junk", "nats://op:Sup3r-S3cret@127.0.0.1:4222,"} {
		for _, cmd := range [][]string{{"status"}, {"serve"}, {"watch"}} {
			t.Run(cmd[0]+" "+url, func(t *testing.T) {
				r := run(t, "", append(cmd, "--nats-url", url, "--connect-timeout", "1s")...)
				assert.Equal(t, 2, r.Code(), r.All())
				assert.ErrorIs(t, r.Err, natsclient.ErrBadURL)
				assert.NotContains(t, r.All(), "Sup3r-S3cret")
			})
		}
	}
}

// TestBadFlagsExit2: a flag that is unknown or does not parse, or arguments a
// command does not take, are bad input: exit 2 as documented, for every command.
func TestBadFlagsExit2(t *testing.T) {
	tests := [][]string{
		{"plan", "--nope", "x.yaml"},
		{"serve", "--nope"},
		{"status", "--nope"},
		{"status", "--connect-timeout", "soon"},
		{"rollout", "start", "x.yaml", "--canary", "many"},
		{"watch", "--nope"},
		{"creds", "--nope"},
		{"--nope"},
		{"status", "extra"},
		{"serve", "extra"},
		{"plan"},
		{"watch", "a", "b"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := run(t, "", args...)
			assert.Equal(t, 2, r.Code(), r.All())
		})
	}
}
