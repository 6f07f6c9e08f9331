package fault

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/pbxfleet/pbxfleet/internal/proctest"
)

// bins are the binaries the tests run as processes, built once by TestMain.
var bins proctest.Binaries

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pbxfleet-fault-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault: temp dir:", err)
		os.Exit(1)
	}
	code := 1
	if bins, err = proctest.Build(context.Background(), dir, true); err != nil {
		fmt.Fprintln(os.Stderr, "fault:", err)
	} else {
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
