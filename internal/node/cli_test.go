package node

import (
	"context"
	"errors"
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
		{"killed by the deadline is an error", []string{"sh", "-c", `echo partial; sleep 5`, "sh"}, 200 * time.Millisecond, "", -1, context.DeadlineExceeded},
		{"no program", []string{"/nonexistent/asterisk", "-rx"}, 5 * time.Second, "", -1, errors.New("any")},
		{"no argv", nil, 5 * time.Second, "", -1, ErrNoCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			out, code, err := ExecCLI{Argv: tt.argv}.Run(ctx, "sip show peers")
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
