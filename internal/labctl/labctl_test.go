package labctl

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type echoRunner struct{}

func (echoRunner) Run(_ context.Context, cmd string) (string, int, error) {
	if cmd == "core stop now" {
		return "", 0, nil
	}
	return "No such command '" + cmd + "'\n", 0, nil
}

func TestServeAndRun(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "asterisk.ctl")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sock, echoRunner{}, nil) }()
	require.Eventually(t, func() bool {
		out, code, err := Run(context.Background(), sock, "pjsip reload")
		return err == nil && code == 0 && out == "No such command 'pjsip reload'\n"
	}, 5*time.Second, 20*time.Millisecond)

	_, _, err := Run(context.Background(), sock, "two\nlines")
	require.Error(t, err)

	cancel()
	require.NoError(t, <-done)
	out, code, err := Run(context.Background(), sock, "sip show peers")
	require.NoError(t, err)
	require.Equal(t, 1, code, "nothing listens: exit 1 like asterisk -rx")
	require.Equal(t, NotRunning(sock), out)
}
