// Package clitest runs a command's cobra root in process, for the tests of
// pbxfleet and pbxlab: one run to its end with what it printed, or a run kept
// going whose output is read line by line.
package clitest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
)

// Result is what one in-process run of a command produced.
type Result struct {
	Stdout, Stderr string
	Err            error
}

// Code is the exit status main would use.
func (r Result) Code() int { return opcli.ExitCode(r.Err) }

// All is everything the user would see, including main's "name: <err>" line.
func (r Result) All() string {
	s := r.Stdout + r.Stderr
	if r.Err != nil {
		s += r.Err.Error()
	}
	return s
}

// Run executes root in process with args and stdin, to its end.
func Run(root *cobra.Command, stdin string, args ...string) Result {
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	err := root.ExecuteContext(context.Background())
	return Result{Stdout: out.String(), Stderr: errOut.String(), Err: err}
}

// Start runs root with args until the test ends (then it is cancelled and
// must return no error) and returns its standard output, line by line; the
// channel closes when the command returns.
func Start(t testing.TB, root *cobra.Command, args ...string) <-chan string {
	t.Helper()
	pr, pw := io.Pipe()
	root.SetArgs(args)
	root.SetOut(pw)
	root.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); pw.Close() }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, pr) // an overlong line must not block the command
	}()
	return lines
}

// WaitLine reads lines until one satisfies done and returns it, failing the
// test when the command ends or within passes first; seen gets every line
// read, done's included (nil: none).
func WaitLine(t testing.TB, lines <-chan string, within time.Duration, done func(string) bool, seen func(string)) string {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the command ended before the line awaited")
			}
			if seen != nil {
				seen(l)
			}
			if done(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("no line awaited within %s", within)
		}
	}
}

// Drain reads and drops the rest of lines, so the command never blocks
// writing output nobody reads.
func Drain(lines <-chan string) {
	go func() {
		for range lines {
		}
	}()
}
