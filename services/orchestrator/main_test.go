package orchestrator_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine an engine, a driver or a watch
// started outlives the tests: every one of them must end with its context.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
