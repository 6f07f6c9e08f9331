package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pbxfleet/pbxfleet/cmd/internal/opcli"
)

// result is what one pbxlab command printed and returned.
type result struct {
	stdout, stderr string
	err            error
}

// run runs pbxlab with args in process.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	err := root.ExecuteContext(context.Background())
	return result{stdout: out.String(), stderr: errOut.String(), err: err}
}

const examplePath = "../../examples/fleet.yaml"

// code is the exit status main would use.
func (r result) code() int {
	if r.err == nil {
		return 0
	}
	var ee *opcli.ExitError
	if errors.As(r.err, &ee) {
		return ee.Code
	}
	return opcli.ExitFailed
}

// all is everything the user would see, including main's "pbxlab: <err>" line.
func (r result) all() string {
	s := r.stdout + r.stderr
	if r.err != nil {
		s += r.err.Error()
	}
	return s
}
