package node

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pbxfleet/pbxfleet/internal/testfixtures"
	"go.uber.org/goleak"
)

// The tests drive the agent through a real argv prefix (ExecCLI) that runs
// testdata/fakeasterisk, a stand-in for `asterisk -rx` answering with the real
// captures of internal/testfixtures. TestMain builds it once.

var fakeBinary, fixturesDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pbxfleet-fakeasterisk-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	fakeBinary = filepath.Join(dir, "fakeasterisk")
	build := exec.Command("go", "build", "-o", fakeBinary, "./testdata/fakeasterisk")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build fakeasterisk:", err)
		return 1
	}
	fixturesDir = filepath.Join(dir, "fixtures")
	if err := testfixtures.WriteAsterisk(fixturesDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	// Every goroutine an agent starts (watches, status, service, probe gate)
	// must end with its context; goleak retries while they wind down.
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintln(os.Stderr, "goroutines outlived the tests:", err)
		return 1
	}
	return code
}

func fakeCommand(stateDir, role, confDir string) []string {
	return []string{fakeBinary, fixturesDir, stateDir, role, confDir, "-rx"}
}
