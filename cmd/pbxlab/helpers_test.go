package main

import (
	"testing"

	"github.com/pbxfleet/pbxfleet/cmd/internal/clitest"
)

// result is what one pbxlab command printed and returned.
type result = clitest.Result

// run runs pbxlab with args in process.
func run(_ *testing.T, stdin string, args ...string) result {
	return clitest.Run(newRootCommand(), stdin, args...)
}

const examplePath = "../../examples/fleet.yaml"
