package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"
)

// CLI runs one Asterisk CLI command, as `asterisk -rx '<command>'` does, and
// returns what it printed (stdout and stderr) and its exit status. err is for a
// command that could not be run at all. A *lab.Host satisfies it in-process.
// Asterisk exits 0 for almost everything, so callers judge by the text
// (docs/asterisk.md#reloads-and-cli-replies).
type CLI interface {
	Run(ctx context.Context, command string) (stdout string, exitCode int, err error)
}

// ExecCLI runs commands with an argv prefix, e.g. ["asterisk", "-rx"] or
// ["docker", "exec", "oml-asterisk-prodenv", "asterisk", "-rx"]. The command text
// is passed as one argument: no shell is involved.
type ExecCLI struct {
	Argv []string
}

// Run implements CLI.
func (e ExecCLI) Run(ctx context.Context, command string) (string, int, error) {
	if len(e.Argv) == 0 {
		return "", -1, fmt.Errorf("run %q: %w", command, ErrNoCommand)
	}
	args := append(append([]string{}, e.Argv[1:]...), command)
	cmd := exec.CommandContext(ctx, e.Argv[0], args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// Once the deadline killed the command, stop waiting for its output even
	// if a child it left behind still holds the pipe.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		// Killed by the deadline: its partial output proves nothing.
		return out.String(), -1, fmt.Errorf("run %s %q: %w", e.Argv[0], command, ctx.Err())
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0, nil
	case errors.As(err, &exitErr):
		return out.String(), exitErr.ExitCode(), nil
	default:
		return out.String(), -1, fmt.Errorf("run %s %q: %w", e.Argv[0], command, err)
	}
}
