package fault

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The binaries the tests run as processes, built once by TestMain (not
// race-built: the race detector watches the test process).
var (
	binPBXFleet   string
	binPBXNode    string
	binAgentsNode string
	binNATSServer string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pbxfleet-fault-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault: temp dir:", err)
		os.Exit(1)
	}
	code := 1
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, "fault:", err)
	} else {
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinaries builds pbxfleet, pbx-node, agents-node and the upstream
// nats-server (the module's own dependency) into dir.
func buildBinaries(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	builds := [][]string{
		{"build", "-o", dir + string(filepath.Separator),
			"github.com/pbxfleet/pbxfleet/cmd/pbxfleet",
			"github.com/pbxfleet/pbxfleet/pbx-node",
			"github.com/pbxfleet/pbxfleet/agents-node"},
		{"build", "-o", filepath.Join(dir, "nats-server"), "github.com/nats-io/nats-server/v2"},
	}
	for _, args := range builds {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %v: %w\n%s", args, err, out)
		}
	}
	binPBXFleet = filepath.Join(dir, "pbxfleet")
	binPBXNode = filepath.Join(dir, "pbx-node")
	binAgentsNode = filepath.Join(dir, "agents-node")
	binNATSServer = filepath.Join(dir, "nats-server")
	return nil
}
