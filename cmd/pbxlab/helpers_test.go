package main

import (
	"testing"

	"github.com/pbxfleet/pbxfleet/cmd/internal/clitest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// result is what one pbxlab command printed and returned.
type result = clitest.Result

// run runs pbxlab with args in process.
func run(_ *testing.T, stdin string, args ...string) result {
	return clitest.Run(newRootCommand(), stdin, args...)
}

const examplePath = "../../examples/fleet.yaml"

// TestBadInputExitsTwo: pbxlab refuses what was typed as pbxfleet does,
// with exit status 2 (it exited 1 for missing or extra arguments).
func TestBadInputExitsTwo(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"lab without its fleet file", []string{"lab"}},
		{"demo with an argument", []string{"demo", "extra"}},
		{"an unknown flag", []string{"bench", "--no-such-flag"}},
		{"an unknown command", []string{"serve"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, "", tt.args...)
			require.Error(t, r.Err)
			assert.Equal(t, 2, r.Code(), r.All())
		})
	}
}
