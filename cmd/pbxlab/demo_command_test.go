package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pbxfleet/pbxfleet/cmd/internal/clitest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDemo runs the README's first command in-process: embedded NATS, 12 lab
// hosts speaking SIP on loopback, 12 real agents, two rollouts. The demo checks
// its own claims and fails when one does not hold; the test also reads the
// output a newcomer would read.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	r := run(t, "", "demo", "--dir", dir)
	require.NoError(t, r.Err, r.All())
	out := r.Stdout
	assert.Contains(t, out, "8 of 8 claims held")
	assert.Regexp(t, regexp.MustCompile(`demo-1 +outbound route pbxfleet_issabel id 1, patterns X\., trunks issabel; OML:OUTR:1 TRUNK-1=1`), out, "the outbound route is an OMniLeads object")
	assert.Regexp(t, regexp.MustCompile(`demo-6 +99999 dialled through OMniLeads' outbound routes ended \S+:1 at the far side's probe number 99999`), out, "the outbound-route probe")
	assert.Contains(t, out, "FAIL oml_inbound_route 098098: DID 098098 has no inbound route in OMniLeads (OML:INR:098098 missing)")
	assert.Regexp(t, regexp.MustCompile(`rollout \S+ succeeded: 6 sites, 6 converged, 0 failed`), out)
	assert.Regexp(t, regexp.MustCompile(`rollout \S+ rolled_back: 6 sites, \d converged, 1 failed`), out)
	assert.Contains(t, out, "CONGESTION:21")
	assert.Regexp(t, regexp.MustCompile(`omnileads/issabel .* OK \(\d+ ms\)`), out, "the raw qualify line that stayed green")
	assert.Contains(t, out, "nats --server nats://127.0.0.1:")
	// No secret is ever printed: every secret the demo generated is in the lab
	// hosts' files, and none of them is in the output.
	files, err := filepath.Glob(filepath.Join(dir, "hosts", "*", "etc", "pbxfleet_sip.conf"))
	require.NoError(t, err)
	require.Len(t, files, 6)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		m := regexp.MustCompile(`(?m)^secret=(\S+)$`).FindSubmatch(b)
		require.NotNil(t, m, f)
		assert.NotContains(t, r.All(), string(m[1]))
	}
}

// TestDemoKeepServesThePage: `demo --keep` prints the fleet page's address
// before the rollouts start, and the page shows the demo's sites until Ctrl-C.
func TestDemoKeepServesThePage(t *testing.T) {
	lines := clitest.Start(t, newRootCommand(), "demo", "--keep", "--dir", t.TempDir())
	var url string
	pageRE := regexp.MustCompile(`^fleet page: (http://127\.0\.0\.1:\d+/)`)
	clitest.WaitLine(t, lines, 2*time.Minute, func(l string) bool { return strings.HasPrefix(l, "keeping NATS") }, func(l string) {
		if m := pageRE.FindStringSubmatch(l); m != nil && url == "" {
			url = m[1]
		}
	})
	clitest.Drain(lines)
	require.NotEmpty(t, url, "the page's address was printed")
	resp, err := http.Get(url + "api/snapshot")
	require.NoError(t, err)
	defer resp.Body.Close()
	var snap struct {
		Sites    []struct{ Site string }  `json:"sites"`
		Rollouts []struct{ Phase string } `json:"rollouts"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&snap))
	assert.Len(t, snap.Sites, 6)
	require.Len(t, snap.Rollouts, 2)
	assert.Equal(t, "rolled_back", snap.Rollouts[0].Phase)
	assert.Equal(t, "succeeded", snap.Rollouts[1].Phase)
}
