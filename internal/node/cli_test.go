package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExecCLI(t *testing.T) {
	tests := []struct {
		name     string
		argv     []string
		timeout  time.Duration
		wantOut  string
		wantCode int
		wantErr  error
	}{
		// The command text is the last argument, as `asterisk -rx '<command>'`.
		{"prints and exits 0", []string{"sh", "-c", `echo "got: $1"`, "sh"}, 5 * time.Second, "got: sip show peers\n", 0, nil},
		{"exit status is reported, not an error", []string{"sh", "-c", `echo down >&2; exit 1`, "sh"}, 5 * time.Second, "down\n", 1, nil},
		{"killed by the deadline is an error", []string{"sh", "-c", `echo partial; exec sleep 5`, "sh"}, 200 * time.Millisecond, "", -1, context.DeadlineExceeded},
		// A child left holding the output (sh's sleep outlives the killed sh)
		// must not hold the agent past its deadline.
		{"a child holding the output does not hold the deadline", []string{"sh", "-c", `sleep 30 & echo $! >"$PBXFLEET_TEST_PIDFILE"; wait`, "sh"}, 200 * time.Millisecond, "", -1, context.DeadlineExceeded},
		{"no program", []string{"/nonexistent/asterisk", "-rx"}, 5 * time.Second, "", -1, errors.New("any")},
		{"no argv", nil, 5 * time.Second, "", -1, ErrNoCommand},
	}
	// The child the killed shell leaves behind is ended here, by its PID.
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	t.Setenv("PBXFLEET_TEST_PIDFILE", pidFile)
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			type ran struct {
				out  string
				code int
				err  error
			}
			done := make(chan ran, 1)
			go func() {
				out, code, err := ExecCLI{Argv: tt.argv}.Run(ctx, "sip show peers")
				done <- ran{out, code, err}
			}()
			var r ran
			select {
			case r = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Run still waits for a process it should have left behind")
			}
			out, code, err := r.out, r.code, r.err
			assert.Equal(t, tt.wantCode, code)
			switch {
			case tt.wantErr == nil:
				require.NoError(t, err)
				assert.Equal(t, tt.wantOut, out)
			case tt.wantErr.Error() == "any":
				require.Error(t, err)
			default:
				require.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}
