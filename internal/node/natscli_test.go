package node

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
)

// natsCLI finds the real `nats` binary (natscli). Outside CI the test skips when
// it is missing; in CI (.ci/run installs it) a missing binary is a failure.
func natsCLI(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("nats")
	if err != nil {
		if gopath, gerr := exec.Command("go", "env", "GOPATH").Output(); gerr == nil {
			cand := strings.TrimSpace(string(gopath)) + "/bin/nats"
			if _, serr := os.Stat(cand); serr == nil {
				return cand
			}
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("the nats CLI is not installed: %v", err)
		}
		t.Skip("the nats CLI is not installed (go install github.com/nats-io/natscli/nats@v0.5.0)")
	}
	return path
}

func runNats(t *testing.T, bin, url string, stdin []byte, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--server", url, "--no-context"}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "nats %s: %s", strings.Join(args, " "), out)
	shown := string(out)
	if len(shown) > 400 {
		shown = shown[:400] + "..."
	}
	t.Logf("$ nats %s\n%s", strings.Join(args, " "), shown)
	return string(out)
}

// TestNatsCLIDrivesAnAgent is the README's operator walk-through, run with the
// real nats CLI against a running agent: put a desired state with `nats kv put`,
// watch the result with `nats sub`, read the key back, list the agents with
// `nats micro ls`, and run a check with `nats req`.
func TestNatsCLIDrivesAnAgent(t *testing.T) {
	bin := natsCLI(t)
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.verify = 12 * time.Second // the rolled-back revision waits this long for its probe
	h.start()

	data, _, err := events.Encode(events.SourceCLI, events.Desired{Node: h.node, Revision: 1, Trunk: seedTrunk()})
	require.NoError(t, err)
	runNats(t, bin, srv.URL, data, "kv", "put", events.BucketDesired, h.node)

	out := runNats(t, bin, srv.URL, nil, "sub", "--stream", events.StreamResults, "--all", "--count", "1", "--raw", "pbxfleet.result.>")
	assert.Contains(t, out, `"type":"pbxfleet.result.v1"`)
	assert.Contains(t, out, `"outcome":"converged"`)
	assert.Contains(t, out, `"verdict":"trunk_works"`)
	assert.NotContains(t, out, testSecret)

	out = runNats(t, bin, srv.URL, nil, "kv", "get", events.BucketDesired, h.node, "--raw")
	assert.Contains(t, out, `"type":"pbxfleet.desired.v1"`)

	out = runNats(t, bin, srv.URL, nil, "micro", "ls")
	assert.Contains(t, out, events.ServiceNode)

	out = runNats(t, bin, srv.URL, nil, "req", events.CheckSubject("bsas-1", events.RolePBX), "", "--timeout", "20s")
	assert.Contains(t, out, `"passed":true`, "nats req exits 0 even with no responder: the body is what counts")

	// Breaking the far side makes the next revision roll back, visible with nats sub.
	h.setMode("badsecret")
	tr := seedTrunk()
	tr.Secret = "An0ther-Strong-Secret"
	data, _, err = events.Encode(events.SourceCLI, events.Desired{Node: h.node, Revision: 2, Trunk: tr})
	require.NoError(t, err)
	runNats(t, bin, srv.URL, data, "kv", "put", events.BucketDesired, h.node)
	out = runNats(t, bin, srv.URL, nil, "sub", "--stream", events.StreamResults, "--last", "--count", "1", "--raw", "pbxfleet.result.>")
	if !strings.Contains(out, `"revision":2`) {
		// --last may deliver revision 1's result if revision 2's is still being verified.
		require.Eventually(t, func() bool {
			out = runNats(t, bin, srv.URL, nil, "sub", "--stream", events.StreamResults, "--last", "--count", "1", "--raw", "pbxfleet.result.>")
			return strings.Contains(out, `"revision":2`)
		}, 90*time.Second, time.Second)
	}
	assert.Contains(t, out, `"outcome":"rolled_back"`)
	assert.Contains(t, out, `CONGESTION`)
	assert.NotContains(t, out, "An0ther-Strong-Secret")
	assert.NotContains(t, h.read("pbxfleet_sip.conf"), "An0ther-Strong-Secret", "old bytes restored")
	assert.Contains(t, h.read("pbxfleet_sip.conf"), "secret="+testSecret)
}
