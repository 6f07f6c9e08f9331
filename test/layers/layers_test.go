// Package layers_test holds the package map's rules as tests: which binary may
// carry which code, and which way the arrows between layers point. It asks the
// go command itself (`go list`), so it sees what a build would link.
package layers_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/pbxfleet/pbxfleet"

// goList runs `go list` with args from the module root and returns one line
// per package.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(goBin); err != nil {
		t.Skipf("no go command at %s: %v", goBin, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, append([]string{"list"}, args...)...)
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list %s: %s", strings.Join(args, " "), stderr.String())
	return strings.Fields(string(out))
}

// TestBinariesCarryOnlyWhatTheyRun: the agents on a PBX link neither the NATS
// server, nor the orchestrator, nor the simulator; the operator's CLI links no
// simulator.
func TestBinariesCarryOnlyWhatTheyRun(t *testing.T) {
	tests := []struct {
		binary    string
		forbidden []string // import path prefixes
	}{
		{"./cmd/pbx-node", []string{"github.com/nats-io/nats-server", module + "/services/", module + "/internal/lab", module + "/internal/bus"}},
		{"./cmd/agents-node", []string{"github.com/nats-io/nats-server", module + "/services/", module + "/internal/lab", module + "/internal/bus"}},
		{"./cmd/pbxfleet", []string{module + "/internal/lab"}}, // lab, labctl, labfleet
	}
	for _, tt := range tests {
		t.Run(tt.binary, func(t *testing.T) {
			deps := goList(t, "-deps", tt.binary)
			require.NotEmpty(t, deps)
			for _, dep := range deps {
				for _, bad := range tt.forbidden {
					assert.False(t, strings.HasPrefix(dep, bad), "%s links %s", tt.binary, dep)
				}
			}
		})
	}
}

// TestInternalNeverImportsServices: internal/ is what services are built on,
// so no internal package, tests included, imports a service.
func TestInternalNeverImportsServices(t *testing.T) {
	lines := goList(t, "-f", `{{.ImportPath}}|{{join .Imports ","}}|{{join .TestImports ","}}|{{join .XTestImports ","}}`, "./internal/...")
	require.NotEmpty(t, lines)
	for _, line := range lines {
		parts := strings.Split(line, "|")
		require.Len(t, parts, 4, line)
		var imports []string
		for _, p := range parts[1:] {
			imports = append(imports, strings.Split(p, ",")...)
		}
		for _, imp := range imports {
			assert.False(t, strings.HasPrefix(imp, module+"/services/"), "%s imports %s", parts[0], imp)
			assert.False(t, strings.HasPrefix(imp, module+"/cmd/"), "%s imports %s", parts[0], imp)
		}
	}
	assert.True(t, slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, module+"/internal/node|") }),
		"the listing holds internal/node")
}
