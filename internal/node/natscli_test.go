package node

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pbxfleet/pbxfleet/events"
	"github.com/pbxfleet/pbxfleet/internal/natstest"
)

// TestNatsCLIDrivesAnAgent is the README's operator walk-through, run with the
// real nats CLI against a running agent: put a desired state with `nats kv put`,
// watch the result with `nats sub`, read the key back, list the agents with
// `nats micro ls`, and run a check with `nats req`.
func TestNatsCLIDrivesAnAgent(t *testing.T) {
	bin := natstest.CLI(t)
	srv := natstest.Start(t)
	h := newHarness(t, srv, events.RolePBX)
	h.verify = 12 * time.Second // the rolled-back revision waits this long for its probe
	h.start()

	data, _, err := events.Encode(events.SourceCLI, events.Desired{Node: h.node, Revision: 1, Trunk: seedTrunk()})
	require.NoError(t, err)
	natstest.RunCLI(t, bin, srv.URL, data, "kv", "put", events.BucketDesired, h.node)

	out := natstest.RunCLI(t, bin, srv.URL, nil, "sub", "--stream", events.StreamResults, "--all", "--count", "1", "--raw", "pbxfleet.result.>")
	assert.Contains(t, out, `"type":"pbxfleet.result.v1"`)
	assert.Contains(t, out, `"outcome":"converged"`)
	assert.Contains(t, out, `"verdict":"trunk_works"`)
	assert.NotContains(t, out, testSecret)

	out = natstest.RunCLI(t, bin, srv.URL, nil, "kv", "get", events.BucketDesired, h.node, "--raw")
	assert.Contains(t, out, `"type":"pbxfleet.desired.v1"`)

	out = natstest.RunCLI(t, bin, srv.URL, nil, "micro", "ls")
	assert.Contains(t, out, events.ServiceNode)

	out = natstest.RunCLI(t, bin, srv.URL, nil, "req", events.CheckSubject("bsas-1", events.RolePBX), `{"probe":true}`, "--timeout", "20s")
	assert.Contains(t, out, `"passed":true`, "nats req exits 0 even with no responder: the body is what counts")

	// Breaking the far side makes the next revision roll back, visible with nats sub.
	h.setMode("badsecret")
	tr := seedTrunk()
	tr.Secret = "An0ther-Strong-Secret"
	data, _, err = events.Encode(events.SourceCLI, events.Desired{Node: h.node, Revision: 2, Trunk: tr})
	require.NoError(t, err)
	natstest.RunCLI(t, bin, srv.URL, data, "kv", "put", events.BucketDesired, h.node)
	out = natstest.RunCLI(t, bin, srv.URL, nil, "sub", "--stream", events.StreamResults, "--last", "--count", "1", "--raw", "pbxfleet.result.>")
	if !strings.Contains(out, `"revision":2`) {
		// --last may deliver revision 1's result if revision 2's is still being verified.
		require.Eventually(t, func() bool {
			out = natstest.RunCLI(t, bin, srv.URL, nil, "sub", "--stream", events.StreamResults, "--last", "--count", "1", "--raw", "pbxfleet.result.>")
			return strings.Contains(out, `"revision":2`)
		}, 90*time.Second, time.Second)
	}
	assert.Contains(t, out, `"outcome":"rolled_back"`)
	assert.Contains(t, out, `CONGESTION`)
	assert.NotContains(t, out, "An0ther-Strong-Secret")
	assert.NotContains(t, h.read("pbxfleet_sip.conf"), "An0ther-Strong-Secret", "old bytes restored")
	assert.Contains(t, h.read("pbxfleet_sip.conf"), "secret="+testSecret)
}
