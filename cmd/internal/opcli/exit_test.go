package opcli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"no error", nil, 0},
		{"a failure", errors.New("rollout failed"), ExitFailed},
		{"bad input", Invalid(errors.New("no such site")), ExitInvalid},
		{"bad input, wrapped", fmt.Errorf("plan: %w", Invalid(errors.New("x"))), ExitInvalid},
		{"paused", &ExitError{Code: ExitPaused, Err: errors.New("paused")}, ExitPaused},
		{"an unknown command (cobra's words)", errors.New(`unknown command "serve" for "pbxlab"`), ExitInvalid},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ExitCode(tt.err), tt.name)
	}
}
